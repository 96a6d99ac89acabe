from __future__ import annotations

import sys

from ._common import add_feature_options, add_ray_options, cache_arg, report_failures

HELP = "embed images into a Parquet file (one row per image)"


def add_engine_options(p) -> None:
    """``--engine`` and the Ray options (shared by the verbs that embed images)."""
    from ..features.engines.runners import ENGINES, PRECISIONS

    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="auto: the fastest of ONNX Runtime and OpenVINO on this machine (measured once), else "
                   "torch; ray: the same pipeline on a Ray cluster (--out becomes a folder of Parquet shards)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="bf16 (CPUs with AVX512_BF16/AMX) and int8 only past the quality gate (wordsight quantize); "
                   "auto: the fastest that passed")
    add_ray_options(p, shards=True)


def engine_kwargs(args) -> dict:
    kw = {"engine": args.engine, "precision": args.precision}
    if args.engine == "ray":
        kw.update(address=args.address, concurrency=args.concurrency, num_cpus=args.num_cpus,
                  num_gpus=args.num_gpus)
    return kw


def add_parser(sub):
    p = sub.add_parser("embed", help=HELP)
    p.add_argument("data", nargs="+", help="a folder (class sub-folders = labels), a .csv/.jsonl manifest, or files")
    p.add_argument("--out", required=True, help="output .parquet file (--engine ray: a folder of shards)")
    add_feature_options(p)
    add_engine_options(p)
    p.set_defaults(func=run, batch_size=None)  # None: the engine's measured best batch size


def run(args) -> int:
    from ..features.parquet import write_embeddings

    data = args.data[0] if len(args.data) == 1 else args.data
    kw = engine_kwargs(args)
    if args.engine == "ray":
        kw["shard_size"] = args.shard_size
    stats = write_embeddings(data, args.out, model=args.model, cache=cache_arg(args),
                             batch_size=args.batch_size, quiet=args.quiet, **kw)
    shards = (f", {stats.shards_written} shard(s) written, {stats.shards_skipped} already done"
              if args.engine == "ray" else "")
    print(f"{stats.ok} image(s) embedded with {args.model} {stats.precision} ({stats.engine}; {stats.computed} computed, "
          f"{stats.cached} from cache{shards}) -> {args.out}", file=sys.stderr)
    return report_failures(stats.failures, stats.ok, args.strict)
