"""Options and reporting shared by several verbs."""
from __future__ import annotations

import sys


def add_feature_options(p, model_default: str | None = "efficientnet-lite0") -> None:
    if model_default is not None:
        p.add_argument("--model", default=model_default, help="image encoder name (see `wordsight models`)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per model call (default: measured once per machine, model and input size)")
    p.add_argument("--cache-dir", default=None, help="feature cache folder (default ~/.cache/wordsight)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--strict", action="store_true", help="exit non-zero if any image failed")
    from ._media import add_media_options

    add_media_options(p)


def cache_arg(args):
    return False if args.no_cache else args.cache_dir


def report_failures(failures, n_ok: int, strict: bool) -> int:
    """Print failures (file: reason) to stderr; the exit status the run deserves."""
    if failures:
        print(f"{len(failures)} file(s) failed and were skipped:", file=sys.stderr)
        for p in failures:
            print(f"  {p.path}: {p.reason}", file=sys.stderr)
    if strict and failures:
        return 1
    return 0 if n_ok or not failures else 1


def add_ray_options(p, shards: bool = False) -> None:
    """Where and how the Ray engine runs (verbs with ``--engine ray``)."""
    g = p.add_argument_group("ray engine")
    g.add_argument(
        "--address", default=None, help="Ray cluster: 'auto' or ray://HOST:10001 (default: start a local Ray)"
    )
    g.add_argument("--concurrency", type=int, default=None, help="actors (default: cluster CPUs / --num-cpus)")
    g.add_argument("--num-cpus", type=float, default=1, help="CPUs per actor")
    g.add_argument("--num-gpus", type=float, default=0, help="GPUs per actor")
    if shards:
        g.add_argument("--shard-size", type=int, default=1000, help="images per Parquet shard")


def encoders_arg(args) -> list[str]:
    """``--encoders`` as a list of names; the default image model when it was not given. A comma
    followed by grids and a colon stays inside a tile bag's name (``tilebag:2,3:efficientnet-lite0``)."""
    import re

    from ..encoders import DEFAULT_IMAGE_MODEL

    return [e.strip() for e in re.split(r",(?!\s*\d+(?:,\d+)*:)", args.encoders or DEFAULT_IMAGE_MODEL) if e.strip()]
