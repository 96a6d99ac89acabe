"""``--search``: the options ``fit`` and ``demo`` share, and the run that searches, saves the
winner and writes the leaderboard beside it."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ._common import encoders_arg

LEADERBOARD = "leaderboard.csv"
SEARCH_JSON = "search.json"


def add_search_options(p) -> None:
    from ..training.autofit import ENSEMBLE_CHOICES
    from ..training.search import SEARCH_MODES

    g = p.add_argument_group("search (--search replaces --fusion/--head/--C/--augment: it chooses them)")
    g.add_argument("--search", default=None, choices=SEARCH_MODES,
                   help="cross-validate encoders (and their concatenations), fusions, heads, penalties "
                   "(and, thorough, augmentation) on the training images; save the best")
    g.add_argument("--time-limit", default=None, help="bound on the whole search, e.g. 600, 90s, 10m, 1h")
    g.add_argument("--ensemble", default="auto", choices=ENSEMBLE_CHOICES,
                   help="auto: the best of the single model, soft voting and stacking by cross-validation")
    g.add_argument("--max-members", type=int, default=3, help="members of an ensemble")


def encoder_pool(args) -> list[str] | None:
    """The encoders named with --encoders, or None (the search's default pool)."""
    return encoders_arg(args) if args.encoders else None


def run_search(args, data, out, log=None):
    """Search on ``data`` (training images only), save the winner to ``out`` with
    ``leaderboard.csv`` and ``search.json`` beside its files; print the leaderboard."""
    from ..training.autofit import search_fit
    from ._common import cache_arg

    outcome = search_fit(data, mode=args.search, encoders=encoder_pool(args), time_limit=args.time_limit,
                         ensemble=args.ensemble, max_members=args.max_members, seed=args.seed,
                         cache=cache_arg(args), batch_size=args.batch_size, quiet=args.quiet, log=log)
    out = Path(out)
    outcome.model.save(out)
    outcome.result.write_csv(out / LEADERBOARD)
    (out / SEARCH_JSON).write_text(json.dumps(outcome.to_json(), indent=2))
    print(outcome.result.table())
    print(f"\nchosen: {outcome.chosen} ({'; '.join(outcome.members)}), search {outcome.seconds:.0f} s "
          f"-> {out} (leaderboard: {out / LEADERBOARD})", file=sys.stderr)
    return outcome
