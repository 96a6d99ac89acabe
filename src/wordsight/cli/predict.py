from __future__ import annotations

import contextlib
import sys

from ._anomaly import is_detector_format, predict_detector, refuse_heatmaps
from ._common import add_feature_options, add_ray_options, cache_arg, report_failures
from ._media import listed, print_timelines
from ._precision import add_precision_option, use_precision

HELP = "classify images with a saved model"


def add_parser(sub):
    from ..frontend.counts import count_option

    p = sub.add_parser("predict", help=HELP)
    p.add_argument("model", help="model folder written by `wordsight fit`")
    p.add_argument("images", nargs="+", help="image files, folders or a .csv/.jsonl manifest")
    p.add_argument("--top-k", **count_option("top_k"), default=5, help="classes listed per image")
    p.add_argument(
        "--out", default=None, help="write one row per image to .json, .jsonl, .csv or .parquet (default: print)"
    )
    p.add_argument("--no-describe", action="store_true", help="leave out the description in words")
    add_precision_option(p, None, "; default: what the model's features had at fit")
    p.add_argument("--text", action="append", default=None, metavar="TEXT",
                   help="the image's own text, for paired-text models (fusion paired or late); once per image "
                   "file listed, in order (a manifest gives them in its 'text' column instead)")
    p.add_argument("--coverage", type=float, default=None,
                   help="add each image's conformal prediction set, holding the true class with this probability")
    p.add_argument("--set-method", choices=["lac", "aps", "raps"], default="lac", help="conformity score of the sets")
    p.add_argument("--reject-rate", type=float, default=None,
                   help="mark 'unknown' the images less like the training classes than all but this fraction "
                   "of the training images")
    p.add_argument("--heatmaps", default=None, metavar="DIR",
                   help="an anomaly detector fitted with --method patchcore: write where each image is abnormal here")
    add_feature_options(p, model_default=None)
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="ray: the same batch callable on a Ray actor pool (no descriptions)")
    add_ray_options(p)
    p.set_defaults(func=run)


# Images predicted at a time: features, probabilities and records are held for one chunk only, so
# memory stays bounded however long the list (200,000 manifest rows held at once took 11.9 GB).
CHUNK = 1024


def ray_records(args, data, classes, task=None):
    """Batches of the records of ``predict_records``, computed on Ray by the engine-agnostic PredictBatch."""
    from ..estimator.batch_predict import ray_predict, to_records

    for part in ray_predict(args.model, data, address=args.address, concurrency=args.concurrency,
                            num_cpus=args.num_cpus, num_gpus=args.num_gpus, cache=cache_arg(args), quiet=args.quiet):
        yield to_records(part, classes, args.top_k, task)


def local_records(args, clf, data):
    """Batches of ``clf.predict_records`` (with the sets asked for), :data:`CHUNK` images at a time:
    each chunk's images in order, then its failures; the listing's problems with the last chunk."""
    from ..io.sources import Source, open_source

    src = open_source(data)
    n = len(src.samples)
    for start in range(0, max(n, 1), CHUNK):
        part = Source(src.samples[start:start + CHUNK], list(src.problems) if start + CHUNK >= n else [])
        rows = clf.predict_records(part, top_k=args.top_k, describe=not args.no_describe)
        if args.coverage is not None or args.reject_rate is not None:
            rows = _with_sets(args, clf, part, rows)
        yield rows


def _check_sets(args, clf) -> None:
    """The rates asked for are rates, and the model kept what sets and ``unknown`` are made of."""
    from ..estimator.conformal import check_rate, require_calibration

    if args.coverage is not None:
        check_rate(args.coverage, "--coverage")
    if args.reject_rate is not None:
        check_rate(args.reject_rate, "--reject-rate")
    require_calibration(clf, args.model, "--coverage / --reject-rate")


def _with_sets(args, clf, data, rows) -> list:
    """``rows`` with the prediction sets / ``unknown`` asked for (:mod:`..estimator.conformal`)."""
    from ..estimator.conformal import annotate_records

    return annotate_records(clf, data, rows, args.coverage, args.reject_rate, args.set_method)


def run(args) -> int:
    from ..estimator import load_model_folder
    from ..evaluate.timeline import TimelineCollector
    from ..frontend import check_reads_texts, check_top_k
    from ..io.output_files import check_output_file
    from ..io.records import FORMATS, RecordWriter
    from ..io.sources import Problem
    from ..storage import declared_format

    data = args.images[0] if len(args.images) == 1 else args.images
    if args.text is not None:
        from ..estimator.paired_text import with_texts

        data = with_texts(args.images, args.text)
    if args.out:
        check_output_file(args.out, FORMATS)
    # config.json read once: a folder that is no saved model is said before the images are listed,
    # and the kind it declares picks the detector or loads the model
    fmt = declared_format(args.model)
    data, frames = listed(data)
    if is_detector_format(fmt):
        return predict_detector(args, data)
    refuse_heatmaps(args)
    if args.engine == "ray":
        if args.coverage is not None or args.reject_rate is not None:
            raise ValueError("--coverage and --reject-rate run with the local engine only")
        from ..estimator import read_config
        from ..estimator.batch_predict import PredictBatch
        from ..estimator.fusion import FUSION_CLASSES

        fusion = FUSION_CLASSES.get(read_config(args.model).get("fusion"))
        if args.text is not None or (fusion is not None and fusion.paired):
            raise ValueError("--engine ray does not carry the images' texts: predict paired-text models "
                             "(fusion paired or late) with the local engine")
        batch = PredictBatch(args.model)
        classes = batch.classes
        k = check_top_k(args.top_k, len(classes))
        batches = ray_records(args, data, classes, batch.task)
    else:
        clf = load_model_folder(args.model, fmt)
        if args.text is not None:
            check_reads_texts(clf.reads_texts, clf.fusion_name, args.model)
        k = check_top_k(args.top_k, len(clf.classes_))
        if args.coverage is not None or args.reject_rate is not None:
            _check_sets(args, clf)
        clf.set_params(cache=cache_arg(args), batch_size=args.batch_size, quiet=args.quiet)
        print(use_precision(clf, args.precision), file=sys.stderr)
        batches = local_records(args, clf, data)
    failures, n_ok, timeline = [], 0, TimelineCollector()
    with RecordWriter(args.out, k, sets=args.coverage is not None, unknown=args.reject_rate is not None,
                      frames=frames) if args.out else contextlib.nullcontext() as writer:
        for rows in batches:
            timeline.add_records(rows)
            ok = [r for r in rows if r.ok]
            n_ok += len(ok)
            failures += [Problem(r.path, r.error) for r in rows if not r.ok]
            if writer is not None:
                writer.write(rows)
            else:
                _print(ok)
    if args.out:
        print(f"{n_ok} image(s) classified -> {args.out}", file=sys.stderr)
    print_timelines(timeline, to_stdout=bool(args.out))
    return report_failures(failures, n_ok, args.strict)


def _print(records) -> None:
    from ..io.label_sets import label_cell

    for r in records:
        top = ", ".join(f"{c} {p:.2f}" for c, p in r.top_k)
        sets = "" if r.prediction_set is None else "\t{" + ", ".join(map(str, r.prediction_set)) + "}"
        print(f"{r.path}\t{label_cell(r.predicted)}\t{top}{sets}" + (f"\t{r.description}" if r.description else ""))
