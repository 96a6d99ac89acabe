from __future__ import annotations

import sys

from ._common import add_feature_options, cache_arg, report_failures
from ._media import print_record_timelines

HELP = "put images into words: concepts they resemble, or a caption"


def add_parser(sub):
    from ..features.views import VIEWS
    from ..frontend.counts import count_option

    p = sub.add_parser("describe", help=HELP)
    p.add_argument("data", nargs="+", help="a folder, a .csv/.jsonl manifest, or image files")
    p.add_argument("--top", **count_option("top"), default=3, help="concepts per description (default 3)")
    p.add_argument(
        "--concepts",
        default=None,
        help="your own concept list (.txt one per line, .json list or {name: description}, .csv name,description) "
        "instead of the 1000 ImageNet concepts",
    )
    p.add_argument("--view", default=None, choices=list(VIEWS),
                   help="transform images first (light-background: invert light-on-dark images)")
    p.add_argument("--out", default=None, help="write one record per image to .json, .jsonl, .csv or .parquet")
    p.add_argument("--model", default="efficientnet-lite0",
                   help="image encoder name (see `wordsight models`), or a model folder written by `wordsight fit`: "
                   "then its words, led by its classes as `wordsight predict` reports them")
    add_feature_options(p, model_default=None)
    p.add_argument("--text-model", default="minilm", help="text encoder for --concepts with an ImageNet CNN")
    p.set_defaults(func=run)


def run_model(args, data) -> int:
    """A trained model's words (``wordsight predict``'s descriptions): its best classes by
    ``predict_proba``, then the concepts; the same function as predict, the server and the page."""
    from ..estimator import Classifier
    from ..io.records import Prediction, write_records
    from ..io.sources import Problem

    if args.concepts or args.view:
        raise ValueError(f"{args.model}: a trained model describes images in its own words; --concepts and --view "
                         "apply to an image encoder (--model NAME)")
    clf = Classifier.load(args.model)
    clf.set_params(cache=cache_arg(args), batch_size=args.batch_size, quiet=args.quiet)
    rows = clf.predict_records(data, top_k=1, describe=True)
    ok = [r for r in rows if r.ok]
    for r in ok:
        print(f"{r.path}\t{r.description}")
    if args.out:
        write_records([Prediction(r.path, r.label, description=r.description) for r in ok], args.out)
        print(f"{len(ok)} description(s) -> {args.out}", file=sys.stderr)
    print_record_timelines(ok, to_stdout=bool(args.out))
    return report_failures([Problem(r.path, r.error) for r in rows if not r.ok], len(ok), args.strict)


def run(args) -> int:
    from pathlib import Path

    from ..features import extract_features
    from ..features.views import get_view
    from ..io.output_files import check_output_file
    from ..io.records import FORMATS, Prediction, write_records
    from ..text import ConceptBank
    from ..zeroshot.image_text import describe_features, text_side

    data = args.data[0] if len(args.data) == 1 else args.data
    if args.out:
        check_output_file(args.out, FORMATS)
    if Path(args.model).is_dir():  # a model folder written by `wordsight fit`
        return run_model(args, data)
    view, view_key = get_view(args.view)
    feats = extract_features(data, args.model, cache=cache_arg(args), batch_size=args.batch_size,
                             quiet=args.quiet, view=view, view_key=view_key)
    concepts = None
    if args.concepts:
        concepts = ConceptBank.from_file(args.concepts, text_model=text_side(args.model, args.text_model))
    texts = describe_features(feats, args.model, top=args.top, concepts=concepts) if feats.samples else []
    for s, text in zip(feats.samples, texts):
        print(f"{s.path}\t{text}")
    records = [Prediction(s.path, s.label, predicted=(t or "").split(",")[0].strip(), description=t)
               for s, t in zip(feats.samples, texts)]  # a frame's label in the timeline: its first words
    if args.out:
        write_records([Prediction(r.path, r.label, description=r.description) for r in records], args.out)
        print(f"{len(texts)} description(s) -> {args.out}", file=sys.stderr)
    print_record_timelines(records, to_stdout=bool(args.out))
    return report_failures(feats.failures, len(feats.samples), args.strict)
