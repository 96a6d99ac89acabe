from __future__ import annotations

import sys

from ._anomaly import predict_detector
from ._common import add_feature_options, add_ray_options, cache_arg, report_failures

HELP = "classify images with a saved model"


def add_parser(sub):
    p = sub.add_parser("predict", help=HELP)
    p.add_argument("model", help="model folder written by `wordsight fit`")
    p.add_argument("images", nargs="+", help="image files, folders or a .csv/.jsonl manifest")
    p.add_argument("--top-k", type=int, default=5, help="classes listed per image")
    p.add_argument(
        "--out", default=None, help="write one row per image to .json, .jsonl, .csv or .parquet (default: print)"
    )
    p.add_argument("--no-describe", action="store_true", help="leave out the description in words")
    p.add_argument("--text", action="append", default=None, metavar="TEXT",
                   help="the image's own text, for paired-text models (fusion paired or late); once per image "
                   "file listed, in order (a manifest gives them in its 'text' column instead)")
    p.add_argument("--coverage", type=float, default=None,
                   help="add each image's conformal prediction set, holding the true class with this probability")
    p.add_argument("--set-method", choices=["lac", "aps"], default="lac", help="conformity score of the sets")
    p.add_argument("--reject-rate", type=float, default=None,
                   help="mark 'unknown' the images less like the training classes than all but this fraction "
                   "of the training images")
    add_feature_options(p, model_default=None)
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="ray: the same batch callable on a Ray actor pool (no descriptions)")
    add_ray_options(p)
    p.set_defaults(func=run)


def ray_records(args, data) -> list:
    """The records of ``predict_records``, computed on Ray by the engine-agnostic PredictBatch."""
    from ..estimator.batch_predict import PredictBatch, ray_predict, to_records
    from ..frontend import check_top_k

    classes, rows = PredictBatch(args.model).classes, []
    check_top_k(args.top_k, len(classes))
    for part in ray_predict(args.model, data, address=args.address, concurrency=args.concurrency,
                            num_cpus=args.num_cpus, num_gpus=args.num_gpus, cache=cache_arg(args), quiet=args.quiet):
        rows += to_records(part, classes, args.top_k)
    return rows


def _with_sets(args, clf, data, rows) -> list:
    """``rows`` with the prediction sets / ``unknown`` asked for (:mod:`..estimator.conformal`)."""
    from ..estimator.conformal import annotate_records, check_rate, require_calibration

    if args.coverage is not None:
        check_rate(args.coverage, "--coverage")
    if args.reject_rate is not None:
        check_rate(args.reject_rate, "--reject-rate")
    require_calibration(clf, args.model, "--coverage / --reject-rate")
    return annotate_records(clf, data, rows, args.coverage, args.reject_rate, args.set_method)


def run(args) -> int:
    from ..estimator import load_model_folder
    from ..estimator.anomaly import AnomalyDetector
    from ..frontend import check_reads_texts, check_top_k
    from ..io.records import write_records
    from ..io.sources import Problem

    data = args.images[0] if len(args.images) == 1 else args.images
    if args.text is not None:
        from ..estimator.paired_text import with_texts

        data = with_texts(args.images, args.text)
    if args.engine == "ray":
        if args.coverage is not None or args.reject_rate is not None:
            raise ValueError("--coverage and --reject-rate run with the local engine only")
        from ..estimator import read_config
        from ..estimator.fusion import FUSION_CLASSES

        fusion = FUSION_CLASSES.get(read_config(args.model).get("fusion"))
        if args.text is not None or (fusion is not None and fusion.paired):
            raise ValueError("--engine ray does not carry the images' texts: predict paired-text models "
                             "(fusion paired or late) with the local engine")
        rows = ray_records(args, data)
    else:
        clf = load_model_folder(args.model)
        if isinstance(clf, AnomalyDetector):
            return predict_detector(args, clf, data)
        if args.text is not None:
            check_reads_texts(clf.reads_texts, clf.fusion_name, args.model)
        check_top_k(args.top_k, len(clf.classes_))
        clf.set_params(cache=cache_arg(args), batch_size=args.batch_size, quiet=args.quiet)
        rows = clf.predict_records(data, top_k=args.top_k, describe=not args.no_describe)
        if args.coverage is not None or args.reject_rate is not None:
            rows = _with_sets(args, clf, data, rows)
    ok = [r for r in rows if r.ok]
    if args.out:
        write_records(rows, args.out)
        print(f"{len(ok)} image(s) classified -> {args.out}", file=sys.stderr)
    else:
        for r in ok:
            top = ", ".join(f"{c} {p:.2f}" for c, p in r.top_k)
            sets = "" if r.prediction_set is None else "\t{" + ", ".join(map(str, r.prediction_set)) + "}"
            print(f"{r.path}\t{r.predicted}\t{top}{sets}" + (f"\t{r.description}" if r.description else ""))
    failures = [Problem(r.path, r.error) for r in rows if not r.ok]
    return report_failures(failures, len(ok), args.strict)
