"""Evaluation of a multi-label model: mAP, micro/macro-F1 at the model's thresholds, each label's
AP, precision, recall and F1, the precision-recall curves and the images with the largest misses
(a tag present but scored low, or absent but scored high), whose heatmap is that tag's Grad-CAM."""
from __future__ import annotations

import time

import numpy as np

from ..estimator.tasks.label_scores import decisions, f1_scores, per_label_ap

# Points kept per precision-recall curve in metrics.json (the plot needs no more).
PR_POINTS = 101


def label_set_scores(task, Y: np.ndarray, proba: np.ndarray, classes) -> dict:
    """``n``, the task's metrics, the label-frequency baseline's mAP (each label scored by a
    constant: its AP is the label's share of the test images) and the ``per_label`` table."""
    from sklearn.metrics import precision_recall_curve

    ap = per_label_ap(Y, proba)
    th = task.thresholds(len(classes))
    f = f1_scores(Y, decisions(proba, th))
    prevalence = Y.mean(0)
    out = {"n": int(len(Y)), **{name: float(fn(Y, proba)) for name, fn in task.metrics().items()},
           "frequency_baseline_mAP": float(prevalence[Y.any(0)].mean()) if Y.any() else 0.0}
    per, curves = {}, {}
    for j, c in enumerate(classes):
        per[str(c)] = {"ap": None if np.isnan(ap[j]) else float(ap[j]), "precision": float(f["precision"][j]),
                       "recall": float(f["recall"][j]), "f1": float(f["f1"][j]), "support": int(f["support"][j]),
                       "threshold": float(th[j])}
        if Y[:, j].any():
            p, r, _ = precision_recall_curve(Y[:, j], proba[:, j])
            keep = np.unique(np.linspace(0, len(p) - 1, min(len(p), PR_POINTS)).round().astype(int))
            curves[str(c)] = {"precision": p[keep].tolist(), "recall": r[keep].tolist()}
    out["per_label"], out["pr_curves"], out["classes"] = per, curves, [str(c) for c in classes]
    return out


def largest_misses(clf, F, Y: np.ndarray, proba: np.ndarray, n: int) -> list[dict]:
    """The ``n`` images whose worst tag is furthest from the truth (``|truth - probability|``),
    with that tag, whether it was missed or falsely found, and the label sets."""
    classes = [str(c) for c in clf.classes_]
    err = np.abs(Y - proba)
    worst = err.argmax(1)
    th = clf.task_.thresholds(len(classes))
    wrong = np.flatnonzero(((proba >= th) != Y.astype(bool)).any(1))
    picked = wrong[np.argsort(-err[wrong, worst[wrong]], kind="stable")][:n].tolist()
    sets = clf.task_.decide(proba[picked], clf.classes_) if picked else []
    out = []
    for i, found in zip(picked, sets):
        j = int(worst[i])
        kind = "missed" if Y[i, j] else "found but absent"
        out.append({"path": getattr(F.samples[i], "path", None), "true": "|".join(c for c, k in zip(classes, Y[i]) if k),
                    "predicted": classes[j], "kind": kind, "confidence": float(proba[i, j]),
                    "description": f"tag {classes[j]!r} {kind} (probability {proba[i, j]:.2f}, threshold {th[j]:.2f}); "
                                   f"predicted set: {'|'.join(found) or '(none)'}", "_sample": F.samples[i]})
    return out


def evaluate_label_sets(clf, test_blocks, F, proba, mistakes: int, say, t0: float) -> dict:
    """The results :func:`~wordsight.evaluate.evaluate` returns for a multi-label model."""
    task = clf.task_
    Y = task.targets(test_blocks.labels, clf.classes_)  # an unknown label: a one-line ValueError
    m = label_set_scores(task, Y, proba, clf.classes_)
    say(f"evaluated {len(Y)} images: mAP {m['mAP']:.4f}")
    summary = {"encoders": clf.encoder_names, "fusion": clf.fusion_name, "head": clf.head_name,
               "classes": clf.class_names, "head_info": {k: v for k, v in clf.head_.info.items() if k != "cv_mean_ap"}}
    results = {"model": summary, "task": {"name": task.name, "report_sections": list(task.report_sections)},
               "metrics": m, "failures": [{"path": f.path, "reason": f.reason} for f in test_blocks.failures]}
    if "mistakes" in task.report_sections:
        results["mistakes"] = largest_misses(clf, F, Y, proba, mistakes)
    results["seconds"] = round(time.time() - t0, 1)
    return results


def plot_pr_curves(metrics: dict, path) -> None:
    """Each label's precision-recall curve (AP in the legend), one axes."""
    from .plots import figure, literal

    curves = metrics.get("pr_curves") or {}
    with figure(path, figsize=(6.5, 5)) as (fig, ax):
        for c, cv in curves.items():
            ap = metrics["per_label"][c]["ap"]
            ax.plot(cv["recall"], cv["precision"], label=literal(f"{c} (AP {ap:.2f})"), lw=1.2)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"Precision-recall per label (mAP {metrics['mAP']:.3f})")
        if len(curves) <= 20:
            ax.legend(fontsize=7, loc="lower left")
