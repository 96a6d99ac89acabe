from __future__ import annotations

import sys

from ._common import add_feature_options, cache_arg, report_failures


def add_parser(sub):
    p = sub.add_parser("embed", help="embed images into a Parquet file (one row per image)")
    p.add_argument("data", nargs="+", help="a folder (class sub-folders = labels), a .csv/.jsonl manifest, or files")
    p.add_argument("--out", required=True, help="output .parquet file")
    add_feature_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..features.parquet import write_embeddings

    data = args.data[0] if len(args.data) == 1 else args.data
    stats = write_embeddings(data, args.out, model=args.model, cache=cache_arg(args),
                             batch_size=args.batch_size, quiet=args.quiet)
    print(f"{stats.ok} image(s) embedded with {args.model} ({stats.computed} computed, "
          f"{stats.cached} from cache) -> {args.out}", file=sys.stderr)
    return report_failures(stats.failures, stats.ok, args.strict)
