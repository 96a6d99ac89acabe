"""The anomaly detector in the verbs: ``fit --task anomaly`` (normal images only), ``predict`` of a
detector folder (score, decision, threshold per image) and ``evaluate --normal LABEL[,LABEL]``."""
from __future__ import annotations

import csv
import json
import sys

from ._common import cache_arg, encoders_arg, report_failures

OUT_SUFFIXES = (".csv", ".json", ".jsonl")


def add_anomaly_options(p) -> None:
    """``fit``'s task choice and the detector's options."""
    from ..estimator.anomaly import SCORERS

    g = p.add_argument_group("anomaly detection (--task anomaly: DATA holds normal images only)")
    g.add_argument("--task", default="auto", choices=("auto", "single-label", "multi-label", "multilabel", "anomaly"),
                   help="auto: multi-label when the manifest has a 'labels' column, else single-label; anomaly: "
                   "learn what normal images look like (all of DATA is normal; class folders are merged)")
    g.add_argument("--method", default="knn", choices=tuple(SCORERS),
                   help="knn: mean cosine distance to the k nearest normal images (DN2); mahalanobis: Ledoit-Wolf")
    g.add_argument("--k", type=int, default=2, help="neighbours of the knn method")
    g.add_argument("--reject-rate", type=float, default=0.05,
                   help="fraction of normal images the threshold refuses (calibrated leave-one-out on DATA)")


def fit_detector(args, data) -> int:
    from ..estimator.anomaly import AnomalyDetector

    if args.search or args.finetune:
        raise ValueError("--search and --finetune train classifiers; --task anomaly takes --encoders, --method, --k "
                         "and --reject-rate")
    det = AnomalyDetector(encoders=tuple(encoders_arg(args)), method=args.method, k=args.k,
                          reject_rate=args.reject_rate, cache=cache_arg(args), batch_size=args.batch_size,
                          quiet=args.quiet).fit(data)
    det.save(args.out)
    print(f"fitted an anomaly detector ({args.method}, k={args.k}) on {det.n_train_} normal images of "
          f"{', '.join(det.encoder_names)}, threshold {det.threshold_:.4f} -> {args.out}", file=sys.stderr)
    return report_failures(det.fit_failures_, 1, args.strict) if det.fit_failures_ else 0


def predict_detector(args, det, data) -> int:
    """One row per readable image: path, score (higher = more normal), decision, threshold."""
    if args.out and not args.out.endswith(OUT_SUFFIXES):
        raise ValueError(f"{args.out}: a detector's scores are written to {', '.join(OUT_SUFFIXES)}")
    det.set_params(cache=cache_arg(args), batch_size=args.batch_size, quiet=args.quiet)
    F = det.featurize(data)
    scores = det.score_featurized(F)
    rows = [{"path": str(s.path), "score": float(v), "decision": "normal" if v >= det.threshold_ else "abnormal",
             "threshold": det.threshold_} for s, v in zip(F.samples, scores)]
    if args.out:
        _write_rows(rows, args.out)
        print(f"{len(rows)} image(s) scored -> {args.out}", file=sys.stderr)
    else:
        for r in rows:
            print(f"{r['path']}\t{r['score']:.4f}\t{r['decision']}\t{r['threshold']:.4f}")
    return report_failures(F.failures, len(rows), args.strict)


def _write_rows(rows: list[dict], out: str) -> None:
    if out.endswith(".csv"):
        with open(out, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=["path", "score", "decision", "threshold"])
            w.writeheader()
            w.writerows(rows)
    elif out.endswith(".jsonl"):
        with open(out, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    else:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)


def evaluate_detector_cli(args, det) -> int:
    from ..evaluate.anomaly import anomaly_table, evaluate_detector, write_anomaly_report
    from ..io.sources import Problem

    if not args.normal:
        raise ValueError(f"{args.model} is an anomaly detector: name the normal label(s) of the test images "
                         "with --normal LABEL[,LABEL]")
    det.set_params(cache=cache_arg(args), batch_size=args.batch_size, quiet=args.quiet)
    results = evaluate_detector(det, args.data, [v.strip() for v in args.normal.split(",") if v.strip()],
                                most_abnormal=args.mistakes)
    print(anomaly_table(results))
    if args.report:
        path = write_anomaly_report(results, args.report, title=f"wordsight anomaly evaluation of {args.model}")
        print(f"report: {path}", file=sys.stderr)
    failures = [Problem(f["path"], f["reason"]) for f in results["failures"]]
    return report_failures(failures, results["metrics"]["n"], args.strict)
