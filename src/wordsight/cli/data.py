from __future__ import annotations

import sys

HELP = "datasets: write Fashion-MNIST as an ImageFolder tree of PNGs"


def add_parser(sub):
    p = sub.add_parser("data", help=HELP)
    p.add_argument("name", choices=["fashion-mnist"])
    p.add_argument("--out", required=True, help="output folder (gets train/ and test/)")
    p.add_argument("--split", choices=["train", "test", "both"], default="both")
    p.add_argument("--per-class", type=int, default=None, help="a seeded, balanced subset of this many per class")
    p.add_argument(
        "--root", default=None, help="folder with the IDX files (default: $WORDSIGHT_DATA, Debian's, download)"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from ..io.datasets import write_image_folder

    for split in (["train", "test"] if args.split == "both" else [args.split]):
        base = write_image_folder(args.out, split, per_class=args.per_class, root=args.root)
        print(f"wrote {split} to {base}", file=sys.stderr)
    return 0
