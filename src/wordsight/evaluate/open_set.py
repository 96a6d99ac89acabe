"""Prediction sets and "unknown" on a labelled test set: empirical coverage, mean set size and
coverage per class (:mod:`~wordsight.estimator.conformal`), and, when the test set holds classes
the model does not know, the unknown-class AUROC beside the accuracy on the known classes."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def open_set_metrics(model, data, coverage: float | None = None, method: str = "lac") -> dict:
    """The numbers of ``model`` (a fitted Classifier with calibration scores) on ``data``
    (labelled images): ``known_accuracy`` over the images of classes it knows; with images of
    other classes ``unknown_auroc`` (its OOD score, unknown as positive); with ``coverage`` the
    sets' empirical ``coverage``, ``mean_set_size`` and ``coverage_per_class`` (known images)."""
    from sklearn.metrics import roc_auc_score

    from ..estimator.conformal import check_rate, ood_scores, set_matrix

    if coverage is not None:
        check_rate(coverage, "coverage")
    cal = model.calibration_scores()
    F = model.featurize(data)
    if any(s.label is None for s in F.samples):
        raise ValueError(f"{data}: every test image needs a label (class folders or a manifest label column)")
    names = [str(c) for c in model.classes_]
    labels = [str(s.label) for s in F.samples]
    known = np.array([lab in names for lab in labels], bool)
    if not known.any():
        raise ValueError(f"{data}: no test image belongs to a class the model knows ({', '.join(names)})")
    y = np.array([names.index(lab) for lab, k in zip(labels, known) if k], np.int64)
    P = model.proba_featurized(F)
    out = {"n": len(labels), "n_known": int(known.sum()), "n_unknown": int((~known).sum()),
           "known_accuracy": float(np.mean(P[known].argmax(1) == y))}
    if not known.all() and cal.bank is not None:  # an ensemble keeps no training rows: no unknown-class AUROC
        z = ood_scores(cal, model.ood_logits(F), F.matrix)
        out["unknown_auroc"] = float(roc_auc_score(~known, z))
    if coverage is not None:
        S = set_matrix(P[known], cal, coverage, method)
        hit = S[np.arange(len(y)), y]
        out.update(target_coverage=coverage, method=method, coverage=float(hit.mean()),
                   mean_set_size=float(S.sum(1).mean()),
                   coverage_per_class={names[c]: float(hit[y == c].mean()) for c in np.unique(y)})
    return out


def open_set_table(m: dict) -> str:
    """A plain-text table of :func:`open_set_metrics` (for the terminal)."""
    lines = [f"{'metric':<28}{'value':>10}", f"{'accuracy (known classes)':<28}{m['known_accuracy']:>10.2%}"]
    if "unknown_auroc" in m:
        lines.append(f"{'unknown-class AUROC':<28}{m['unknown_auroc']:>10.2%}")
    if "coverage" in m:
        lines += [f"{'coverage':<28}{m['coverage']:>10.2%}", f"{'target coverage':<28}{m['target_coverage']:>10.2%}",
                  f"{'mean set size':<28}{m['mean_set_size']:>10.2f}", "", f"{'class':<28}{'coverage':>10}"]
        lines += [f"{c:<28}{v:>10.2%}" for c, v in m["coverage_per_class"].items()]
    lines.append(f"{'test images':<28}{m['n']:>10d}" + (f" ({m['n_unknown']} of unknown classes)" if m["n_unknown"]
                                                        else ""))
    return "\n".join(lines)


def write_open_set_report(m: dict, folder, title: str = "wordsight prediction sets") -> Path:
    """``folder/index.html`` + ``metrics.json`` + ``coverage_per_class.png`` (the sets' coverage per
    class against the target) of :func:`open_set_metrics`; returns the HTML path."""
    import html
    import json

    from .plots import figure

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(m, indent=2))
    img = ""
    if "coverage_per_class" in m:
        names, values = list(m["coverage_per_class"]), list(m["coverage_per_class"].values())
        with figure(folder / "coverage_per_class.png", figsize=(6, 0.35 * len(names) + 1.2)) as (fig, ax):
            ax.barh(range(len(names)), [100 * v for v in values])
            ax.axvline(100 * m["target_coverage"], color="k", ls="--", lw=1, label="target")
            ax.set(yticks=range(len(names)), yticklabels=names, xlabel="coverage (%)", xlim=(0, 100))
            ax.invert_yaxis()
            ax.legend(loc="lower right")
        img = "<h2>Coverage per class</h2><img src=coverage_per_class.png>"
    page = (f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
            f"<pre>{html.escape(open_set_table(m))}</pre>{img}")
    (folder / "index.html").write_text(page)
    return folder / "index.html"
