from __future__ import annotations

import sys

from ._common import add_feature_options, cache_arg, report_failures
from ._search import add_search_options, run_search

HELP = "train a classifier on labelled images and save it"


def add_model_options(p) -> None:
    """Classifier options shared by ``fit`` and ``demo`` (option lists from the registries)."""
    from ..language.views import VIEW_CHOICES
    from ..models.fusion import FUSIONS
    from ..models.heads import HEADS

    p.add_argument(
        "--encoders",
        default=None,
        help="image encoder(s), comma-separated; several are concatenated (e.g. efficientnet-lite0,mobilenetv2); "
        "default efficientnet-lite0 (with --search: the encoders searched over)",
    )
    p.add_argument("--fusion", default="image", choices=FUSIONS,
                   help="image embeddings, the ConSE text vector, both, or image + the zero-shot prior")
    p.add_argument("--head", default="logistic", choices=HEADS)
    p.add_argument("--C", type=float, default=None, help="penalty of logistic/svm (default: cross-validated)")
    p.add_argument("--class-weight", default=None, choices=["balanced"], help="reweight classes for imbalance")
    p.add_argument("--text-model", default="minilm", help="text encoder of the language layer")
    p.add_argument("--text-weight", type=float, default=1.0, help="scale of the text block in concat fusion")
    p.add_argument("--prior-weight", default="auto",
                   help="'auto' (the prior probe with the logistic head), 'held-out' (a weight chosen on "
                   "leave-one-shot-out folds) or a number")
    p.add_argument("--class-descriptions", default=None, help="JSON {class: [texts]} for the zero-shot prior")
    p.add_argument("--prior-view", default="auto", choices=VIEW_CHOICES,
                   help="image view the prior reads (auto: light-background for light-on-dark images)")
    p.add_argument("--augment", type=int, default=0, help="augmented views per training image")
    p.add_argument("--tta", type=int, default=0, help="test-time augmentation views")
    p.add_argument("--seed", type=int, default=0)
    add_search_options(p)


def classifier_from_args(args):
    import json

    from ..models import Classifier

    descriptions = None
    if args.class_descriptions:
        with open(args.class_descriptions, encoding="utf-8") as f:
            descriptions = json.load(f)
    weight = args.prior_weight if args.prior_weight in ("auto", "held-out") else float(args.prior_weight)
    encoders = args.encoders or "efficientnet-lite0"
    return Classifier(encoders=tuple(e.strip() for e in encoders.split(",") if e.strip()), fusion=args.fusion,
                      head=args.head, C=args.C, class_weight=args.class_weight, text_model=args.text_model,
                      text_weight=args.text_weight, prior_weight=weight, class_descriptions=descriptions,
                      prior_view=args.prior_view, augment=args.augment, tta=args.tta, cache=cache_arg(args),
                      batch_size=args.batch_size,
                      random_state=args.seed, quiet=args.quiet)


def describe_fit(clf) -> str:
    info = clf.head_.info
    parts = [f"{len(clf.classes_)} classes", f"encoders {', '.join(clf.encoder_names)}", f"fusion {clf.fusion}",
             f"head {clf.head}"]
    if info.get("C") is not None:
        parts.append(f"C={info['C']:g}")
    if clf.prior_mix_ is not None:
        mix = clf.prior_mix_
        parts.append(f"prior weight {mix.weight:g} ({mix.scores.get('how', 'given')}), prior view {clf.prior_.view_}")
    return ", ".join(parts)


def add_parser(sub):
    p = sub.add_parser("fit", help=HELP)
    p.add_argument("data", nargs="+", help="labelled images: a folder with one sub-folder per class, or a .csv/.jsonl manifest")
    p.add_argument("--out", required=True, help="model folder to write (config.json + safetensors)")
    add_model_options(p)
    add_feature_options(p, model_default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    data = args.data[0] if len(args.data) == 1 else args.data
    if args.search:
        outcome = run_search(args, data, args.out, log=None if args.quiet else (lambda m: print(m, file=sys.stderr)))
        failures = outcome.model.fit_failures_
        return report_failures(failures, 1, args.strict) if failures else 0
    clf = classifier_from_args(args)
    clf.fit(data)
    clf.save(args.out)
    n = len(clf.fit_failures_)
    print(f"fitted on images of {describe_fit(clf)} -> {args.out}", file=sys.stderr)
    return report_failures(clf.fit_failures_, 1, args.strict) if n else 0
