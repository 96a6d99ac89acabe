"""The anomaly detector in the verbs: ``fit --task anomaly`` (normal images only), ``predict`` of a
detector folder (score, decision, threshold per image) and ``evaluate --normal LABEL[,LABEL]``."""
from __future__ import annotations

import sys

from ._common import cache_arg, encoders_arg, report_failures


def add_anomaly_options(p) -> None:
    """``fit``'s task choice and the detector's options."""
    from ..estimator.anomaly.detector import METHODS, TEXT_WEIGHT

    g = p.add_argument_group("anomaly detection (--task anomaly: DATA holds normal images only)")
    g.add_argument("--task", default="auto", choices=("auto", "single-label", "multi-label", "multilabel", "anomaly"),
                   help="auto: multi-label when the manifest has a 'labels' column, else single-label; anomaly: "
                   "learn what normal images look like (all of DATA is normal; class folders are merged)")
    g.add_argument("--class-name", default=None, metavar="X",
                   help="what the normal images show: adds the words' score ('a photo of a flawless X' vs "
                   "'a photo of a damaged X'); with no images, the detector is the words alone")
    g.add_argument("--words-weight", type=float, default=TEXT_WEIGHT,
                   help="the words' share of the fused score with --class-name and normal images")
    g.add_argument("--method", default="knn", choices=METHODS,
                   help="knn: mean cosine distance to the k nearest normal images (DN2); mahalanobis: Ledoit-Wolf; "
                   "patchcore: a memory bank of patch features, which also shows where (predict --heatmaps); "
                   "words: the words of --class-name alone")
    g.add_argument("--k", type=int, default=2, help="neighbours of the knn method")
    g.add_argument("--coreset", type=float, default=0.1,
                   help="patchcore: fraction of the normal patches kept in its memory bank (greedy k-center)")
    g.add_argument("--reject-rate", type=float, default=0.05,
                   help="fraction of normal images the threshold refuses (calibrated leave-one-out on DATA)")


def fit_detector(args, data) -> int:
    from ..estimator.anomaly import AnomalyDetector

    if args.search or args.finetune:
        raise ValueError("--search and --finetune train classifiers; --task anomaly takes --encoders, --method, --k "
                         "and --reject-rate")
    if not data and args.class_name is None:
        raise ValueError("--task anomaly needs normal images, or --class-name X to start from words alone")
    if not 0 <= args.words_weight <= 1:
        raise ValueError(f"--words-weight must be between 0 and 1, not {args.words_weight:g}")
    method = "words" if not data else args.method
    det = AnomalyDetector(encoders=tuple(encoders_arg(args)), method=method, k=args.k,
                          reject_rate=args.reject_rate, coreset=args.coreset, class_name=args.class_name,
                          text_weight=args.words_weight, cache=cache_arg(args), batch_size=args.batch_size,
                          quiet=args.quiet, precision=getattr(args, "precision", "auto")).fit(data or None)
    det.save(args.out)
    what = f"coreset {args.coreset:g}" if det.localises else "words" if method == "words" else f"k={args.k}"
    if args.class_name is not None and method != "words":
        what += f", words of {args.class_name!r} at weight {args.words_weight:g}"
    print(f"fitted an anomaly detector ({method}, {what}) on {det.n_train_} normal images of "
          f"{', '.join(det.encoder_names)}, threshold {det.threshold_:.4f} -> {args.out}", file=sys.stderr)
    return report_failures(det.fit_failures_, 1, args.strict) if det.fit_failures_ else 0


def is_detector_format(fmt) -> bool:
    """Whether a folder's declared format (``storage.declared_format``) is an anomaly detector's."""
    from ..estimator.anomaly.saved import DETECTOR_FORMAT

    return fmt == DETECTOR_FORMAT


def refuse_heatmaps(args) -> None:
    """``--heatmaps`` of a classifier: refused in one line (its heatmaps are ``wordsight explain``'s)."""
    if args.heatmaps:
        raise ValueError(f"{args.model}: --heatmaps needs an anomaly detector fitted with --method patchcore "
                         "(a classifier's heatmaps: wordsight explain)")


def predict_detector(args, data) -> int:
    """One row per readable image: path, score (higher = more normal), decision, threshold; with
    ``--heatmaps DIR`` a patchcore detector's maps of where each image is abnormal."""
    from ..estimator.anomaly import AnomalyDetector

    if args.out:  # the target checked before any work, as a classifier's predictions' (io.records)
        from ..io.output_files import check_output_file
        from ..io.records import FORMATS

        check_output_file(args.out, FORMATS)
    if args.coverage is not None or args.reject_rate is not None:
        raise ValueError(f"{args.model} is an anomaly detector: its threshold was set at fit (--reject-rate of "
                         "fit); --coverage and --reject-rate apply to classifiers")
    det = AnomalyDetector.load(args.model)
    if args.heatmaps and not det.localises:
        raise ValueError(f"{args.model}: --heatmaps needs a detector fitted with --method patchcore, not {det.method}")
    det.set_params(cache=cache_arg(args), batch_size=args.batch_size, quiet=args.quiet)
    if getattr(args, "precision", None) is not None:  # else the features' precision at fit
        det.set_params(precision=args.precision)
    if args.engine == "ray":
        from ..estimator.batch_predict import ray_score

        rows, failures = ray_score(args.model, data, address=args.address, concurrency=args.concurrency,
                                   num_cpus=args.num_cpus, cache=cache_arg(args), quiet=args.quiet)
        return _emit(args, rows, failures)
    return _emit(args, *_score_rows(det, data, args.heatmaps))


def _score_rows(det, data, heatmaps) -> tuple[list[dict], list]:
    if heatmaps:
        from ..evaluate.anomaly_heatmaps import overlay

        F, pictures = det.featurize_patches(data, views=True)
        maps = det.heatmaps_featurized(F)
    else:
        F = det.featurize(data)
    scores = det.score_featurized(F)
    rows = [{"path": str(s.path), "score": float(v), "decision": "normal" if v >= det.threshold_ else "abnormal",
             "threshold": det.threshold_} for s, v in zip(F.samples, scores)]
    timeline = _with_frames(rows, F.samples)
    if heatmaps:
        from pathlib import Path

        Path(heatmaps).mkdir(parents=True, exist_ok=True)
        for i, (r, pic, grid) in enumerate(zip(rows, pictures, maps)):
            r["heatmap"] = str(Path(heatmaps) / f"{i:05d}_{Path(r['path']).stem[:60]}.png")
            overlay(pic, grid).save(r["heatmap"])
    return rows, F.failures, timeline


def _emit(args, rows: list[dict], failures: list, timeline=None) -> int:
    if args.out:
        _write_rows(rows, args.out)
        print(f"{len(rows)} image(s) scored -> {args.out}", file=sys.stderr)
    else:
        for r in rows:
            print(f"{r['path']}\t{r['score']:.4f}\t{r['decision']}\t{r['threshold']:.4f}"
                  + (f"\t{r['heatmap']}" if "heatmap" in r else ""))
    if timeline is not None:
        from ._media import print_timelines

        print_timelines(timeline, to_stdout=bool(args.out))  # a video's decisions and score over time
    return report_failures(failures, len(rows), args.strict)


def _with_frames(rows: list[dict], samples):
    """Rows of video / DICOM / TIFF frames get ``frame`` and ``time_s`` (``path`` the file); the
    videos' timelines of decisions and scores."""
    from ..evaluate.timeline import TimelineCollector
    from ..io.media_ref import frame_fields

    timeline = TimelineCollector()
    for r, s in zip(rows, samples):
        file, frame, time_s = frame_fields(s.path)
        if frame is not None:
            r.update(path=file, frame=frame, time_s=time_s)
        timeline.add(s.path, r["decision"], r["score"])
    return timeline


def _write_rows(rows: list[dict], out: str) -> None:
    """The rows through :func:`~wordsight.io.row_writer.write_rows` (whole file, CSV cells neutralised)."""
    from ..io.row_writer import write_rows

    extra = [k for k in ("heatmap", "frame", "time_s") if any(k in r for r in rows)]
    write_rows(rows, out, ["path", "score", "decision", "threshold", *extra])


def evaluate_detector_cli(args, det) -> int:
    from ..evaluate.anomaly import anomaly_table, evaluate_detector, write_anomaly_report
    from ..io.sources import Problem

    if not args.normal:
        raise ValueError(f"{args.model} is an anomaly detector: name the normal label(s) of the test images "
                         "with --normal LABEL[,LABEL]")
    det.set_params(cache=cache_arg(args), batch_size=args.batch_size, quiet=args.quiet)
    if getattr(args, "precision", None) is not None:  # else the features' precision at fit
        det.set_params(precision=args.precision)
    results = evaluate_detector(det, args.data, [v.strip() for v in args.normal.split(",") if v.strip()],
                                most_abnormal=args.mistakes)
    print(anomaly_table(results))
    if args.report:
        path = write_anomaly_report(results, args.report, title=f"wordsight anomaly evaluation of {args.model}")
        print(f"report: {path}", file=sys.stderr)
    failures = [Problem(f["path"], f["reason"]) for f in results["failures"]]
    return report_failures(failures, results["metrics"]["n"], args.strict)
