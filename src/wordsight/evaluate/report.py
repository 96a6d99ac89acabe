"""Evaluate a fitted Classifier on labelled images and write the report: ``metrics.json``, PNG
plots (matplotlib, Agg) and a static ``index.html`` that needs nothing but a browser."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone

from ..estimator.feature_blocks import FeatureBlocks
from .metrics import classification_metrics, scores
from .plots import figure, literal
from .report_html import SECTIONS, report_html, sections_of

ABLATIONS = {"image": {"fusion": "image"}, "text": {"fusion": "text"}, "fused": {"fusion": "concat"},
             "prior": {"fusion": "prior"}}


def evaluate(clf, test, train=None, ablation: bool = True, few_shot_ks=None, few_shot_draws: int = 5,
             zero_shot: bool = True, mistakes: int = 12, log=None) -> dict:
    """The metrics of ``clf``'s task on the labelled images ``test`` and the data of the report
    sections the task lists: with ``train`` the ablation (image / text / fused / prior heads refitted
    on ``train``, plus zero-shot) and, when ``few_shot_ks`` is given, the few-shot curve (image-only
    vs prior)."""
    say = log or (lambda msg: None)
    t0 = time.time()
    test_blocks = test if isinstance(test, FeatureBlocks) else clf.extract(test)
    labels = test_blocks.labels
    if any(v is None for v in labels):
        raise ValueError("evaluation needs labelled images (class sub-folders or a manifest with labels)")
    F = clf.featurize(test_blocks)
    proba = clf.proba_featurized(F)
    if clf.task_.label_sets:  # label sets: mAP, F1 at the thresholds, per-label AP (evaluate.multi_label)
        from .multi_label import evaluate_label_sets

        return evaluate_label_sets(clf, test_blocks, F, proba, mistakes, say, t0)
    y = _coerce(labels, clf.classes_)
    known = np.isin(np.asarray(y, dtype=object), np.asarray(clf.classes_, dtype=object))
    if not known.all():
        unknown = sorted({str(v) for v, k in zip(y, known) if not k})
        raise ValueError(f"test labels {unknown[:5]} are not classes of this model ({clf.class_names})")
    sections, metrics = report_sections(clf.task_), clf.task_.metrics()
    results = {"model": _model_summary(clf), "task": {"name": clf.task_.name, "report_sections": list(sections)},
               "metrics": scores(metrics, sections, y, proba, clf.classes_),
               "failures": [{"path": f.path, "reason": f.reason} for f in test_blocks.failures]}
    headline = next(iter(metrics), None)
    say(f"evaluated {len(y)} images" + (f": {headline} {results['metrics'][headline]:.4f}" if headline else ""))
    if "mistakes" in sections:
        results["mistakes"] = _mistakes(clf, F, proba, y, mistakes)
    from .timeline_report import timeline_results  # videos among the test images: their timelines

    top = np.argmax(proba, axis=1)
    timelines = timeline_results(test_blocks.samples, [clf.classes_[j] for j in top], proba[np.arange(len(top)), top], y)
    if timelines:
        results["timelines"] = timelines
    if "ablations" in sections:
        results["ablation"] = _ablation(clf, test_blocks, y, results["metrics"], train if ablation else None,
                                        zero_shot, say)
    if train is not None and few_shot_ks and "few_shot" in sections and not hasattr(clf, "members"):  # refits clf
        results["few_shot"] = _few_shot(clf, train, test_blocks, few_shot_ks, few_shot_draws, say)
    results["seconds"] = round(time.time() - t0, 1)
    return results


def _few_shot(clf, train, test_blocks, ks, draws, say) -> dict:
    """The few-shot curve of ``clf`` refitted image-only and, when the images have probabilities, with the prior."""
    from .fewshot import few_shot_curve

    pool = train if isinstance(train, FeatureBlocks) else clf.extract(train)
    methods = {"image-only": clone(clf).set_params(fusion="image", augment=0, tta=0)}
    if test_blocks.probs is not None:
        methods["prior"] = clone(clf).set_params(fusion=_variant(clf, "prior"), augment=0, tta=0)
    return few_shot_curve(methods, pool, test_blocks, ks=ks, draws=draws, log=say)


def report_sections(task) -> tuple[str, ...]:
    """The task's report sections, checked against those the report can write."""
    unknown = [s for s in task.report_sections if s not in SECTIONS]
    if unknown:
        raise ValueError(f"task {task.name!r} lists unknown report section(s) {unknown}: choose from {', '.join(SECTIONS)}")
    return tuple(task.report_sections)


def _ablation(clf, test_blocks, y, metrics, train, zero_shot, say) -> list[dict]:
    """The ablation rows: this model, zero-shot and, with ``train``, the variants refitted on it."""
    rows = [{"name": f"this model ({clf.fusion_name})", "accuracy": metrics["accuracy"],
             "macro_f1": metrics["macro_f1"], "ece": metrics["ece"]}]
    has_probs = test_blocks.probs is not None
    zero_shot_row = None
    if zero_shot and has_probs and clf.prior_ is not None:
        zero_shot_row = _zero_shot_row(clf, test_blocks, y, say)
    if hasattr(clf, "members"):  # an ensemble: the ablation refits one Classifier
        train = None
    if train is not None:
        train_blocks = train if isinstance(train, FeatureBlocks) else clf.extract(train, views=clf.augment)
        for name, params in ABLATIONS.items():
            if params["fusion"] != "image" and not has_probs:
                continue
            try:
                t = time.time()
                v = clone(clf).set_params(fusion=_variant(clf, params["fusion"])).fit(train_blocks)
                m = classification_metrics(y, v.proba_featurized(v.featurize(test_blocks)), v.classes_)
                rows.append(
                    {
                        "name": f"{name} ({params['fusion']})",
                        "accuracy": m["accuracy"],
                        "macro_f1": m["macro_f1"],
                        "ece": m["ece"],
                        "prior_weight": v.prior_mix_.weight if v.prior_mix_ is not None else None,
                    }
                )
                say(f"ablation {name}: {m['accuracy']:.4f} ({time.time() - t:.1f}s)")
                if name == "prior" and zero_shot and zero_shot_row is None:
                    zero_shot_row = _zero_shot_row(v, test_blocks, y, say)
            except Exception as e:
                rows.append({"name": name, "error": f"{type(e).__name__}: {e}"})
        from .paired_ablation import paired_ablation  # image / own text / both, when the images have texts

        rows += paired_ablation(clf, train_blocks, test_blocks, y, say)
    if zero_shot_row is not None:
        rows.insert(1, zero_shot_row)
    return rows


def _variant(clf, fusion: str):
    """The fusion ``fusion`` for a refitted variant: the model's own (with its options) when it has that one."""
    return clf.fusion if clf.fusion_name == fusion else fusion


def _coerce(labels, classes):
    """Labels as the model's class type (folder names are str; a model fitted on ints has ints)."""
    if len(classes) and isinstance(classes[0], (np.integer, int)) and labels and isinstance(labels[0], str):
        return [int(v) for v in labels]
    return list(labels)


def _zero_shot_row(prior_model, test_blocks, y, say) -> dict:
    """The language prior of a fitted ``fusion='prior'`` model alone: zero-shot accuracy (no
    training label used; the training images only centre the text vectors)."""
    from .._util.numerics import softmax

    try:
        zp = softmax(prior_model.prior_log_proba(test_blocks))
    except Exception as e:  # the report still stands without the language layer
        return {"name": "zero-shot", "error": f"{type(e).__name__}: {e}"}
    m = classification_metrics(y, zp, prior_model.classes_)
    say(f"zero-shot: {m['accuracy']:.4f}")
    return {"name": "zero-shot (no training labels)", "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "ece": m["ece"]}


def _model_summary(clf) -> dict:
    return {"encoders": clf.encoder_names, "fusion": clf.fusion_name, "head": clf.head_name,
            "classes": clf.class_names, "head_info": {k: v for k, v in clf.head_.info.items() if k != "cv_accuracy"},
            "prior_weight": clf.prior_mix_.weight if clf.prior_mix_ is not None else None, "augment": clf.augment, "tta": clf.tta,
            "language": _language(clf)}


def _language(clf) -> dict | None:
    """How much the language contributed to a prior-probe model: the chosen prior weight and the
    held-out scores on the training images (zero-shot, image probe, the candidates), and its line."""
    from ..estimator.prior_strength import summary

    probe = getattr(getattr(clf, "state_", None), "probe", None)
    if probe is None:
        return None
    keys = ("choice", "strength", "calibration", "n_train", "zero_shot_right", "held_out")
    return {"summary": summary(probe.info), **{k: probe.info.get(k) for k in keys}}


def _mistakes(clf, F, proba, y, n) -> list[dict]:
    pred = proba.argmax(1)
    idx = {c: i for i, c in enumerate(clf.classes_.tolist())}
    y_idx = np.asarray([idx.get(v, -1) for v in y])
    wrong = np.flatnonzero(pred != y_idx)
    wrong = wrong[np.argsort(-proba[wrong, pred[wrong]], kind="stable")][:n]
    texts = clf.describe_blocks(F.blocks.take(wrong), proba[wrong]) if len(wrong) and F.blocks is not None else []
    out = []
    for j, i in enumerate(wrong):
        s = F.samples[i]
        out.append({"path": getattr(s, "path", None), "true": str(y[i]), "predicted": str(clf.classes_[pred[i]]),
                    "confidence": float(proba[i, pred[i]]), "description": texts[j] if j < len(texts) else None,
                    "_sample": s})
    return out


# ---------------------------------------------------------------------------------------- plots
def plot_confusion(metrics: dict, path: Path) -> None:
    conf = np.asarray(metrics["confusion"], float)
    classes = [literal(c) for c in metrics["classes"]]
    rows = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    n = len(classes)
    size = max(5.0, 0.55 * n + 2)
    with figure(path, figsize=(size + 1, size)) as (fig, ax):
        im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(n), classes, rotation=45, ha="right")
        ax.set_yticks(range(n), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if n <= 25:
            for i in range(n):
                for j in range(n):
                    if conf[i, j]:
                        ax.text(j, i, int(conf[i, j]), ha="center", va="center", fontsize=8,
                                color="white" if rows[i, j] > 0.5 else "black")
        ax.set_title(f"Confusion matrix (accuracy {np.trace(conf) / max(conf.sum(), 1):.1%}; colour: share of the "
                     "true class)")
        fig.colorbar(im, ax=ax, fraction=0.046)


def plot_reliability(metrics: dict, path: Path) -> None:
    cal = metrics["calibration"]
    with figure(path, 2, 1, figsize=(5.5, 6.5), gridspec_kw={"height_ratios": [3, 1]},
                sharex=True) as (fig, (ax, ax2)):
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        mids = [(b["lo"] + b["hi"]) / 2 for b in cal["bins"]]
        ax.bar(mids, [b["accuracy"] for b in cal["bins"]], width=1 / cal["n_bins"], edgecolor="black",
               color="tab:blue", alpha=0.8, label="accuracy")
        ax.plot(mids, [b["confidence"] for b in cal["bins"]], "o", color="tab:red", label="mean confidence")
        for m, b in zip(mids, cal["bins"]):
            ax.plot([m, m], [b["accuracy"], b["confidence"]], color="tab:red", lw=1.5)
        ax.set_ylabel("accuracy in bin")
        ax.set_ylim(0, 1)
        ax.set_title(f"Reliability diagram (ECE {cal['ece']:.3f})")
        ax.legend(loc="upper left")
        ax2.bar([(b["lo"] + b["hi"]) / 2 for b in cal["bins"]], [b["count"] for b in cal["bins"]],
                width=1 / cal["n_bins"], color="grey", edgecolor="black")
        ax2.set_xlabel("confidence (top-1 probability)")
        ax2.set_ylabel("images")
        ax2.set_xlim(0, 1)


def plot_few_shot(fs: dict, path: Path) -> None:
    with figure(path, figsize=(6, 4.2)) as (fig, ax):
        ks = fs["ks"]
        for name, res in fs["methods"].items():
            m = np.array([res[str(k)]["mean"] for k in ks])
            s = np.array([res[str(k)]["std"] for k in ks])
            ax.errorbar(ks, m, yerr=s, marker="o", capsize=3, label=literal(name))
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("labelled images per class (k)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"Few-shot: mean ± std over {fs['draws']} draws ({fs['n_test']} test images)")
        ax.grid(alpha=0.3)
        ax.legend()


def plot_ablation(rows: list[dict], path: Path) -> None:
    rows = [r for r in rows if "accuracy" in r]
    with figure(path, figsize=(6.5, 0.45 * len(rows) + 1.2)) as (fig, ax):
        names = [literal(r["name"]) for r in rows][::-1]
        accs = [r["accuracy"] for r in rows][::-1]
        ax.barh(names, accs, color="tab:blue")
        for i, a in enumerate(accs):
            ax.text(a + 0.005, i, f"{a:.1%}", va="center")
        ax.set_xlim(0, 1.08)
        ax.set_xlabel("test accuracy")
        ax.set_title("What each part contributes")


# ---------------------------------------------------------------------------------------- files
def _thumbnail(sample, path: Path) -> bool:
    from PIL import Image

    from ..io.media_read import sample_image

    try:
        img = sample_image(sample)  # a video / DICOM / TIFF frame decoded alone
        img.thumbnail((128, 128))
        if max(img.size) < 96:  # tiny images (Fashion-MNIST's 28 px) are shown enlarged
            scale = -(-96 // max(img.size))  # round up: 28 px -> 4x = 112 px
            img = img.resize((img.size[0] * scale, img.size[1] * scale), Image.Resampling.NEAREST)
        img.save(path, format="PNG")
        return True
    except Exception:
        return False


def _heatmap(model, sample, path: Path, target: str) -> bool:
    """Grad-CAM (or rollout / LIME where Grad-CAM cannot reach) overlay of a mistake."""
    from ..explain import gradcam_overlay

    try:
        source = sample.data if getattr(sample, "data", None) is not None else sample.path
        gradcam_overlay(model, source, out=path, target=target)
        return True
    except Exception:  # a heatmap is a bonus: the report stands without it
        return False


def write_report(results: dict, folder, title: str = "wordsight evaluation", model=None,
                 heatmaps: int = 6) -> Path:
    """``folder/index.html`` + ``metrics.json`` + PNG plots of the report sections the results' task
    lists; returns the HTML path. With the fitted ``model``, the first ``heatmaps`` mistakes also
    get a heatmap of the wrong class."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    m, sections = results["metrics"], sections_of(results)
    if "confusion" in sections:
        plot_confusion(m, folder / "confusion.png")
    if "calibration" in sections:
        plot_reliability(m, folder / "reliability.png")
    if "per_label" in sections:
        from .multi_label import plot_pr_curves

        plot_pr_curves(m, folder / "pr_curves.png")
    if "ablations" in sections and len([r for r in results.get("ablation", []) if "accuracy" in r]) > 1:
        plot_ablation(results["ablation"], folder / "ablation.png")
    if "few_shot" in sections and results.get("few_shot"):
        plot_few_shot(results["few_shot"], folder / "few_shot.png")
    if results.get("search"):  # `--search`: the leaderboard (evaluate.search_report)
        from .search_report import plot_leaderboard

        plot_leaderboard(results["search"]["leaderboard"], folder / "leaderboard.png")
    for i, mk in enumerate(results.get("mistakes", [])):
        sample = mk.pop("_sample", None)
        name = f"images/mistake_{i:02d}.png"
        mk["thumbnail"] = name if sample is not None and _thumbnail(sample, folder / name) else None
        cam = f"images/mistake_{i:02d}.cam.png"
        wanted = model is not None and sample is not None and i < heatmaps
        mk["heatmap"] = cam if wanted and _heatmap(model, sample, folder / cam, mk["predicted"]) else None
    from .timeline_report import write_timelines

    write_timelines(results, folder)
    (folder / "metrics.json").write_text(json.dumps(results, indent=2, default=_json_default))
    (folder / "index.html").write_text(report_html(results, folder, title))
    return folder / "index.html"


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
