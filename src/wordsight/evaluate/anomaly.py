"""A detector on labelled test images: the one-class task's metrics (abnormal positive), the
confusion at the detector's threshold, and the report (``metrics.json``, a histogram of normal vs
abnormal scores, the ROC curve, the most abnormal images, ``index.html``)."""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from ..estimator.tasks import OneClassTask


def normal_targets(labels: list, normal, source) -> np.ndarray:
    """1 for an abnormal image (a label not in ``normal``), 0 for a normal one; a clear error when
    the images have no labels, when ``normal`` names no label of them, or when one side is empty."""
    if any(v is None for v in labels):
        raise ValueError(f"{source}: evaluating a detector needs labelled images (class sub-folders or a manifest)")
    normal = {str(v) for v in normal}
    present = sorted({str(v) for v in labels})
    if not normal & set(present):
        raise ValueError(f"{source}: --normal {','.join(sorted(normal))} names no label of the test images "
                         f"(labels: {', '.join(present[:10])})")
    y = np.array([str(v) not in normal for v in labels], np.int64)
    if y.all() or not y.any():
        raise ValueError(f"{source}: the test images must hold both normal and abnormal labels (labels: {', '.join(present[:10])})")
    return y


def evaluate_detector(det, test, normal, most_abnormal: int = 12) -> dict:
    """Metrics of ``det`` on ``test`` with the labels in ``normal`` as normal (see the module doc)."""
    task = OneClassTask()
    F = det.featurize(test)
    y = normal_targets([getattr(s, "label", None) for s in F.samples], normal, test)
    score = task.output(det.score_featurized(F) - det.threshold_)  # > 0: abnormal
    said = task.decide(score, det.classes_) == "abnormal"
    metrics = {name: f(y, score) for name, f in task.metrics().items()}
    confusion = [[int(((y == t) & (said == p)).sum()) for p in (False, True)] for t in (0, 1)]
    metrics.update(n=len(y), n_normal=int((y == 0).sum()), n_abnormal=int(y.sum()), threshold=det.threshold_,
                   false_reject_rate=confusion[0][1] / max(1, confusion[0][0] + confusion[0][1]),
                   detection_rate=confusion[1][1] / max(1, y.sum()))
    top = np.argsort(-score)[:most_abnormal]
    maps = _top_heatmaps(det, [F.samples[i] for i in top])
    return {"task": {"name": task.name, "report_sections": list(task.report_sections)}, "metrics": metrics,
            "confusion": {"rows": "true normal, abnormal", "columns": "said normal, abnormal", "matrix": confusion},
            "scores": score.tolist(), "targets": y.tolist(),
            "most_abnormal": [{"path": str(F.samples[i].path), "label": str(F.samples[i].label), "score": float(score[i]),
                               "_sample": F.samples[i], "_heatmap": m} for i, m in zip(top, maps)],
            "failures": [{"path": f.path, "reason": f.reason} for f in F.failures]}


def _top_heatmaps(det, samples: list) -> list:
    """(picture, patch grid) of each of ``samples`` for a detector that localises, else Nones."""
    if not getattr(det, "localises", False) or not samples:
        return [None] * len(samples)
    F, pictures = det.featurize_patches(samples, views=True)
    by_path = {s.path: (p, g) for s, p, g in zip(F.samples, pictures, det.heatmaps_featurized(F))}
    return [by_path.get(s.path) for s in samples]


def anomaly_table(results: dict) -> str:
    """The headline numbers and the confusion, as plain text for the terminal."""
    m, c = results["metrics"], results["confusion"]["matrix"]
    return "\n".join([f"{'AUROC':<24}{m['auroc']:>10.4f}", f"{'AUPR (abnormal +)':<24}{m['aupr']:>10.4f}",
                      f"{'FPR at 95% TPR':<24}{m['fpr_at_95_tpr']:>10.4f}", f"{'threshold':<24}{m['threshold']:>10.4f}",
                      f"{'test images':<24}{m['n']:>10d}", "", f"{'confusion':<16}{'said normal':>12}{'said abnormal':>15}",
                      f"{'normal':<16}{c[0][0]:>12d}{c[0][1]:>15d}", f"{'abnormal':<16}{c[1][0]:>12d}{c[1][1]:>15d}"])


def _plots(results: dict, folder: Path) -> None:
    from sklearn.metrics import roc_curve

    from .plots import figure

    s, y = np.asarray(results["scores"]), np.asarray(results["targets"])
    with figure(folder / "score_histogram.png", figsize=(5, 3.5)) as (fig, ax):
        bins = np.linspace(s.min(), s.max(), 30)
        ax.hist(s[y == 0], bins, alpha=0.6, label="normal")
        ax.hist(s[y == 1], bins, alpha=0.6, label="abnormal")
        ax.axvline(0, color="k", ls="--", lw=1, label="threshold")
        ax.set(xlabel="anomaly score (0 = threshold)", ylabel="images")
        ax.legend()
    fpr, tpr, _ = roc_curve(y, s)
    with figure(folder / "roc.png", figsize=(4, 4)) as (fig, ax):
        ax.plot(fpr, tpr, label=f"AUROC {results['metrics']['auroc']:.3f}")
        ax.plot([0, 1], [0, 1], color="grey", ls=":")
        ax.set(xlabel="false-positive rate (normal refused)", ylabel="true-positive rate (abnormal found)")
        ax.legend(loc="lower right")


def write_anomaly_report(results: dict, folder, title: str = "wordsight anomaly evaluation") -> Path:
    """``folder/index.html`` + ``metrics.json`` + ``score_histogram.png`` + ``roc.png`` + thumbnails
    of the most abnormal images; returns the HTML path."""
    from .report import _thumbnail

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    _plots(results, folder)
    cells = []
    for i, row in enumerate(results["most_abnormal"]):
        name = f"images/abnormal_{i:02d}.png"
        heat = row.pop("_heatmap", None)
        if heat is not None:  # where it is abnormal, drawn over the picture the encoder saw
            from .anomaly_heatmaps import overlay

            overlay(*heat).save(folder / name)
            row.pop("_sample")
            row["thumbnail"], row["heatmap"] = name, True
        else:
            row["thumbnail"] = name if _thumbnail(row.pop("_sample"), folder / name) else None
        img = f'<img src="{name}">' if row["thumbnail"] else ""
        cells.append(f"<figure>{img}<figcaption>{html.escape(row['label'])}: {row['score']:.3f}</figcaption></figure>")
    (folder / "metrics.json").write_text(json.dumps({k: v for k, v in results.items() if k not in ("scores", "targets")},
                                                    indent=2))
    page = (f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
            f"<pre>{html.escape(anomaly_table(results))}</pre><img src=score_histogram.png><img src=roc.png>"
            f"<h2>Most abnormal images</h2><div style='display:flex;flex-wrap:wrap'>{''.join(cells)}</div>")
    (folder / "index.html").write_text(page)
    return folder / "index.html"
