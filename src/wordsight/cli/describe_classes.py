from __future__ import annotations

import sys
from pathlib import Path

from ._common import add_feature_options, cache_arg

HELP = "write class descriptions that discriminate on your images (generate, refine, select) to a JSON file"


def add_parser(sub):
    from ..features.views import VIEW_CHOICES
    from ..frontend.counts import count_option
    from ..text.llm import BACKENDS
    from ..zeroshot.refine import SELECT_CHOICES

    p = sub.add_parser("describe-classes", help=HELP)
    p.add_argument("classes", help='class names, comma-separated ("cat,dog,bird"), or a file of them (.txt one per line, .json a list)')
    p.add_argument("--images", default=None,
                   help="your images (a folder, a .csv/.jsonl manifest): the pairs the zero-shot classifier confuses "
                   "on them get differential descriptions, and the texts are selected on them")
    p.add_argument("--out", required=True, help="the JSON file to write {class: [{text, weight, source}]}")
    p.add_argument("--from", dest="start", default=None,
                   help="start from this descriptions file (yours, edited) instead of asking the LLM")
    p.add_argument("--llm", default="local", choices=list(BACKENDS),
                   help="who writes descriptions and differential descriptions (default: the packaged SmolLM2)")
    p.add_argument("--llm-url", default=None, help="openai: base URL of a chat-completions endpoint")
    p.add_argument("--llm-model", default=None, help="openai: model name")
    p.add_argument("--llm-key-env", default="OPENAI_API_KEY", help="openai: environment variable holding the key")
    p.add_argument("--k", **count_option("k"), default=5, help="LLM descriptions per class")
    p.add_argument("--pairs", type=int, default=6, help="confused class pairs that get differential descriptions")
    p.add_argument("--fudd-k", type=int, default=2, help="differential descriptions per class and pair")
    p.add_argument("--no-templates", action="store_true", help="leave the prompt templates out of the texts")
    p.add_argument("--select", default="auto", choices=SELECT_CHOICES,
                   help="drop texts that do not separate their class: with the images' labels (a folder per class), "
                   "the zero-shot pseudo-labels, or none (auto: labels when the images have them)")
    p.add_argument("--keep", type=float, default=None,
                   help="keep a text scoring at least this share of its class's best score (default 0.7)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--view", default="auto", choices=VIEW_CHOICES,
                   help="auto: invert light-on-dark images (Fashion-MNIST, scans), chosen from the images")
    p.add_argument("--text-model", default="minilm", help="text encoder for CNN and caption features")
    add_feature_options(p)
    p.set_defaults(func=run)


def read_class_list(spec: str) -> list[str]:
    """Class names from a file (.txt one per line, .json a list) or the text itself (comma-separated),
    by the one class-list rule (:mod:`wordsight.frontend.classes`)."""
    from ..frontend import parse_classes, read_classes_file

    path = Path(spec)
    if path.suffix.lower() in (".txt", ".json") or path.exists():
        return read_classes_file(path)
    return parse_classes(spec, "classes")


def run(args) -> int:
    from ..frontend import read_descriptions
    from ..text.descriptions import entry_weight, save_class_descriptions
    from ..zeroshot.pipeline import ZeroShotPipeline
    from ..zeroshot.refine import describe_classes

    classes = read_class_list(args.classes)
    start = read_descriptions(args.start, classes) if args.start else None
    llm_options = {}
    if args.llm == "openai":
        llm_options = {"base_url": args.llm_url, "model": args.llm_model, "api_key_env": args.llm_key_env}
    pipeline = ZeroShotPipeline(classes, encoder=args.model, text_model=args.text_model, method="descriptions",
                                view=args.view, cache=cache_arg(args), batch_size=args.batch_size, quiet=args.quiet)
    pool, provenance = describe_classes(classes, args.images, descriptions=start, llm=args.llm,
                                        llm_options=llm_options, k=args.k, seed=args.seed,
                                        templates=not args.no_templates, pairs=args.pairs, fudd_k=args.fudd_k,
                                        select=args.select, keep=args.keep, pipeline=pipeline)
    save_class_descriptions(pool, args.out, provenance=provenance)
    kept = sum(entry_weight(e) > 0 for v in pool.values() for e in v)
    total = sum(len(v) for v in pool.values())
    pairs = ", ".join(f"{a} vs {b}" for a, b, _ in provenance.get("pairs", [])) or "none"
    print(f"{len(classes)} classes, {kept} of {total} texts kept (selection: {provenance.get('selection', 'none')}; "
          f"differential pairs: {pairs}) -> {args.out}", file=sys.stderr)
    return 0
