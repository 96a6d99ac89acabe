from __future__ import annotations

import sys

from ._anomaly import add_anomaly_options, fit_detector
from ._common import add_feature_options, cache_arg, encoders_arg, report_failures
from ._finetune import add_finetune_options, finetune_from_args, remove_checkpoints
from ._precision import add_precision_option, features_phrase
from ._search import add_search_options, run_search
from ._tagger import label_set_defaults

HELP = "train a classifier on labelled images and save it"


def add_model_options(p) -> None:
    """Classifier options shared by ``fit`` and ``demo`` (option lists from the registries)."""
    from ..estimator.fusion import FUSIONS
    from ..estimator.heads import HEADS
    from ..features.views import VIEW_CHOICES
    from ..frontend.counts import count_option

    p.add_argument(
        "--encoders",
        default=None,
        help="image encoder(s), comma-separated; several are concatenated (e.g. efficientnet-lite0,mobilenetv2); "
        "default efficientnet-lite0 (with --search: the encoders searched over)",
    )
    p.add_argument("--fusion", default="auto", choices=("auto", *FUSIONS),
                   help="image embeddings, the ConSE text vector, both, image + the zero-shot prior, or image + "
                   "each image's own text (paired: one head; late: a head on each); auto: the prior below 16 "
                   "labelled images per class, image embeddings from there")
    p.add_argument("--head", default=None, choices=HEADS,
                   help="default logistic (mil for label sets with a tile bag among --encoders); label sets with "
                   "--head mil and no --encoders read the image and its 2x2 tiles (tilebag:2:efficientnet-lite0)")
    p.add_argument("--hidden", type=int, default=None, metavar="H",
                   help="width of the head's hidden layer: mlp (default 512); mil (default 0: a linear score per tile; "
                   "1024 scores each tile with a ReLU layer, chosen on held-out training mosaics)")
    p.add_argument("--C", type=float, default=None, help="penalty of logistic/svm (default: cross-validated)")
    p.add_argument("--class-weight", default=None, choices=["balanced"], help="reweight classes for imbalance")
    p.add_argument("--text-model", default="minilm", help="text encoder of the language layer")
    p.add_argument("--text-weight", type=float, default=1.0, help="scale of the text block in concat fusion")
    p.add_argument("--paired-text-weight", type=float, default=1.0,
                   help="paired fusion: scale of the image's own-text block (a manifest's text column); late "
                   "fusion: weight of the text head's log-probabilities")
    p.add_argument("--prior-weight", default="auto",
                   help="'auto' (the prior probe with the logistic head), 'held-out' (a weight chosen on "
                   "leave-one-shot-out folds) or a number")
    p.add_argument("--class-descriptions", default=None,
                   help="JSON {class: [texts]} for the zero-shot prior (or as `wordsight describe-classes` writes it)")
    p.add_argument("--prior-view", default="auto", choices=VIEW_CHOICES,
                   help="image view the prior reads (auto: light-background for light-on-dark images)")
    p.add_argument("--augment", **count_option("augment"), default=0, help="augmented views per training image")
    p.add_argument("--tta", **count_option("tta"), default=0, help="test-time augmentation views")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--calibration", type=float, default=None,
                   help="hold this fraction of the images out of the head's fit for prediction sets and 'unknown' "
                   "(default: out-of-fold scores of all of them)")
    add_search_options(p)


def classifier_from_args(args):
    """The Classifier the options describe (``--fusion auto`` is resolved in :func:`fit_data`)."""
    from ..estimator import Classifier
    from ..estimator.heads import head_taking

    name = args.head or "logistic"
    width = getattr(args, "hidden", None)
    if width is not None and name not in ("mlp", "mil"):
        raise ValueError(f"--hidden sets the hidden layer of --head mlp or mil, not of {name}")
    hidden = {} if width is None else {"hidden": (width,) if name == "mlp" else width}
    head = head_taking(name, C=args.C, class_weight=args.class_weight, random_state=args.seed, **hidden)
    return Classifier(encoders=tuple(encoders_arg(args)), fusion=fusion_from_args(args), head=head,
                      text_model=args.text_model, augment=args.augment, tta=args.tta, cache=cache_arg(args),
                      batch_size=args.batch_size, random_state=args.seed, quiet=args.quiet,
                      calibration="cross" if args.calibration is None else args.calibration,
                      precision=getattr(args, "precision", "auto"))


def fusion_from_args(args, name: str | None = None):
    """The fusion ``name`` (default ``--fusion``; ``auto``: image) with the options that concern it."""
    from ..estimator.fusion import make_fusion
    from ..text.descriptions import load_class_descriptions

    name = name or ("image" if args.fusion == "auto" else args.fusion)
    if name == "prior":
        descriptions = None
        if args.class_descriptions:  # a user's file: regular, bounded, checked (weights as describe-classes writes)
            descriptions = load_class_descriptions(args.class_descriptions)
        weight = args.prior_weight if args.prior_weight in ("auto", "held-out") else float(args.prior_weight)
        return make_fusion(name, view=args.prior_view, descriptions=descriptions, weight=weight)
    options = {"text": {"text_weight": args.text_weight}, "concat": {"text_weight": args.text_weight},
               "paired": {"weight": args.paired_text_weight}, "late": {"weight": args.paired_text_weight}}
    return make_fusion(name, **options.get(name, {}))


def describe_fit(clf) -> str:
    info = clf.head_.info
    what = "labels (multi-label)" if clf.task_.label_sets else "classes"
    parts = [f"{len(clf.classes_)} {what}", f"encoders {', '.join(clf.encoder_names)}", f"fusion {clf.fusion_name}",
             f"head {clf.head_name}"]
    if info.get("C") is not None:
        parts.append(f"C={info['C']:g}")
    if clf.prior_mix_ is not None:
        mix = clf.prior_mix_
        parts.append(f"prior weight {mix.weight:g} ({mix.scores.get('how', 'given')}), prior view {clf.prior_.view_}")
    return ", ".join(parts)


def fit_notes(clf) -> list[str]:
    """What the language contributed (the prior probe's chosen weight and its held-out scores on
    the training images) and what was done with the images' own texts."""
    probe = getattr(clf.state_, "probe", None)
    lines = []
    if probe is not None:
        from ..estimator.prior_strength import summary

        lines.append(summary(probe.info))
    return lines + list(getattr(clf, "fit_notes_", []))


def add_parser(sub):
    p = sub.add_parser("fit", help=HELP)
    p.add_argument("data", nargs="*", help="labelled images: a folder with one sub-folder per class, or a .csv/.jsonl "
                   "manifest (none: --task anomaly --class-name X, from words alone)")
    p.add_argument("--out", required=True, help="model folder to write (config.json + safetensors)")
    add_model_options(p)
    add_feature_options(p, model_default=None)
    add_precision_option(p)
    add_finetune_options(p)
    add_anomaly_options(p)
    p.set_defaults(func=run)


def fit_data(clf, data, args):
    """Fit ``clf`` on ``data``; ``--fusion auto`` is resolved from the labels first
    (:func:`~wordsight.estimator.classifier.default_fusion`)."""
    from ..io.sources import open_source

    clf.fit_notes_ = []
    data = open_source(data)
    task = task_of(data, getattr(args, "task", "single-label"))
    clf.set_params(task=task)
    base = args.fusion
    if args.fusion == "auto":
        from ..estimator.classifier import default_fusion

        labels = [s.label for s in data.samples]
        base = default_fusion(labels)
        if task == "multi-label" and (clf.head_name != "logistic" or args.prior_weight != "auto"):
            base = "image"  # the multi-label prior is the per-label prior probe, on the logistic head
    if task == "multi-label":
        label_set_defaults(clf, args, base)  # encoders and head left open (._tagger)
    if args.fusion == "auto":
        clf.set_params(fusion=fusion_from_args(args, base))
        if task != "multi-label" and any(isinstance(s.text, str) and s.text.strip() for s in data.samples):
            data = _with_own_texts(clf, data, base, args)
    return clf.fit(data)


def _with_own_texts(clf, data, base: str, args):
    """The images come with their own texts: the fusion that reads them, chosen on the training
    images (:mod:`wordsight.training.own_text`); returns the extracted features to fit on."""
    from sklearn.base import clone

    from ..training.own_text import choose_text_fusion

    blocks = clf.extract(data, views=clf.augment)
    labelled = blocks.take([i for i, s in enumerate(blocks.samples) if s.label is not None])
    name, line = choose_text_fusion(lambda n: clone(clf).set_params(fusion=fusion_from_args(args, n)), labelled,
                                    base, seed=clf.random_state)
    clf.set_params(fusion=fusion_from_args(args, name))
    clf.fit_notes_.append(line)
    return blocks



def _check_search_task(data, args) -> None:
    """``--search`` ranks single-label candidates by accuracy: refused for label sets, in one line."""
    from ..io.sources import open_source

    if task_of(open_source(data), getattr(args, "task", "auto")) == "multi-label":
        raise ValueError("--search ranks single-label models; fit a multi-label model without --search "
                         "(--head logistic|svm|mlp|mil, --encoders for tiles)")


def task_of(data, asked: str) -> str:
    """The task ``--task`` names, or for ``auto`` the data's: multi-label when the labels are
    label sets (a manifest's ``labels`` column), else single-label."""
    from ..estimator.tasks import make_task
    from ..io.label_sets import is_label_set

    if asked != "auto":
        return make_task(asked).name
    return "multi-label" if any(is_label_set(s.label) for s in data.samples) else "single-label"


def run(args) -> int:
    from ..storage.write import check_target

    check_target(args.out)  # a file or a folder of the user's own is refused before training, not after
    data = args.data[0] if len(args.data) == 1 else args.data
    if args.task == "anomaly":
        return fit_detector(args, data)
    if not args.data:
        raise ValueError("name the labelled images to fit on (a folder with one sub-folder per class, or a manifest)")
    if args.search:
        _check_search_task(data, args)
        outcome = run_search(args, data, args.out, log=None if args.quiet else (lambda m: print(m, file=sys.stderr)))
        failures = outcome.model.fit_failures_
        return report_failures(failures, 1, args.strict) if failures else 0
    if args.finetune:
        args.encoders = finetune_from_args(args, data)  # the encoder's weights first, then the head
    clf = classifier_from_args(args)
    fit_data(clf, data, args)
    clf.save(args.out)
    if args.finetune:
        remove_checkpoints(args)
    n = len(clf.fit_failures_)
    print(f"fitted on images of {describe_fit(clf)} -> {args.out}", file=sys.stderr)
    print(features_phrase(clf), file=sys.stderr)
    for line in fit_notes(clf):
        print(f"  {line}", file=sys.stderr)
    return report_failures(clf.fit_failures_, 1, args.strict) if n else 0
