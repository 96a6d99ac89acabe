"""The report as text: ``index.html`` (one block per report section the task lists, in the order
of :data:`SECTIONS`) and the terminal's headline table. Reads only the evaluation's results."""
from __future__ import annotations

import html
import re
from pathlib import Path

# What a report can hold, in the order it shows them; a task lists the ones it wants (``report_sections``).
SECTIONS = ("metrics", "ablations", "few_shot", "per_class", "per_label", "confusion", "calibration", "mistakes")
# How a metric is shown: card label, terminal label (None: not in the terminal's table), as a percentage.
# A metric not listed shows its name and three decimals; top-k accuracy is named by its k.
DISPLAY = {"accuracy": ("accuracy", "accuracy", True), "macro_f1": ("macro-F1", "macro-F1", False),
           "mAP": ("mAP", "mAP", True), "micro_f1": ("micro-F1", "micro-F1", False),
           "frequency_baseline_mAP": ("mAP of label frequencies", "baseline mAP (frequency)", True),
           "ece": ("ECE", "ECE", False), "log_loss": ("log-loss", None, False)}
TOP_K = re.compile(r"top(\d+)_accuracy")
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1050px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
    "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.cards{display:flex;gap:1em;flex-wrap:wrap}"
    ".card{border:1px solid #ddd;border-radius:8px;padding:.6em 1em;min-width:8em}.card b{font-size:1.6em;display:block}"
    ".mk{display:flex;gap:1em;align-items:center;border-bottom:1px solid #eee;padding:.4em 0}.mk img{image-rendering:pixelated}"
    "img.plot{max-width:100%}"
)
e = html.escape


def sections_of(results: dict) -> tuple[str, ...]:
    """The report sections of ``results`` (its task's; every section for results without a task)."""
    return tuple((results.get("task") or {}).get("report_sections", SECTIONS))


def pct(v) -> str:
    return "" if v is None else f"{v:.1%}"


def _display(name: str) -> tuple[str, str | None, bool]:
    top = TOP_K.fullmatch(name)
    if top:
        return f"top-{top[1]}", f"top{top[1]} accuracy", True
    return DISPLAY.get(name, (name, name, False))


def _metrics(m: dict) -> list[tuple[str, float]]:
    """The scalar metrics of ``m`` (the task's; not ``n``): accuracy, top-k, macro-F1, ECE, log-loss
    first, then the others in the task's order."""
    def rank(name: str) -> int:
        return 1 if TOP_K.fullmatch(name) else {"accuracy": 0, "mAP": 0, "micro_f1": 2, "macro_f1": 2, "ece": 3,
                                                 "log_loss": 4}.get(name, 5)

    return sorted(((k, v) for k, v in m.items() if isinstance(v, float)), key=lambda kv: rank(kv[0]))


def _cards(r: dict, folder: Path) -> list[str]:
    parts = ["<div class='cards'>"]
    for name, v in _metrics(r["metrics"]):
        label, _, percent = _display(name)
        parts.append(f"<div class='card'>{e(label)}<b>{e(pct(v) if percent else f'{v:.3f}')}</b></div>")
    return parts + ["</div>"]


def _ablation(r: dict, folder: Path) -> list[str]:
    if not r.get("ablation"):
        return []
    parts = ["<h2>Ablation: image, text, fused, prior</h2><table><tr><th>variant</th><th>accuracy</th>"
             "<th>macro-F1</th><th>ECE</th><th>note</th></tr>"]
    for row in r["ablation"]:
        if "error" in row:
            parts.append(f"<tr><td>{e(row['name'])}</td><td colspan=3>not run</td><td>{e(row['error'])}</td></tr>")
        else:
            note = f"prior weight {row['prior_weight']:g}" if row.get("prior_weight") is not None else ""
            parts.append(f"<tr><td>{e(row['name'])}</td><td>{pct(row['accuracy'])}</td><td>{row['macro_f1']:.3f}</td>"
                         f"<td>{row['ece']:.3f}</td><td>{e(note)}</td></tr>")
    parts.append("</table><p>Variants are refitted on the same training images with only the fusion changed; "
                 "zero-shot uses no training image.</p>")
    if (folder / "ablation.png").exists():
        parts.append("<img class='plot' src='ablation.png' alt='ablation'>")
    return parts


def _few_shot(r: dict, folder: Path) -> list[str]:
    fs = r.get("few_shot")
    if not fs:
        return []
    parts = [f"<h2>Few-shot curve</h2><p>k labelled images per class, {fs['draws']} random draws; every choice "
             "(penalty, prior weight) is made on the k-shot images alone, never on the test set.</p>"
             "<table><tr><th>method</th>" + "".join(f"<th>k={k}</th>" for k in fs["ks"]) + "</tr>"]
    for name, res in fs["methods"].items():
        parts.append(f"<tr><td>{e(name)}</td>" + "".join(
            f"<td>{res[str(k)]['mean']:.1%} ± {res[str(k)]['std']:.1%}</td>" for k in fs["ks"]) + "</tr>")
    return parts + ["</table><img class='plot' src='few_shot.png' alt='few-shot curve'>"]


def _per_class(r: dict, folder: Path) -> list[str]:
    parts = ["<h2>Per class</h2><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>images</th></tr>"]
    for c, v in r["metrics"]["per_class"].items():
        parts.append(f"<tr><td>{e(c)}</td><td>{v['precision']:.3f}</td><td>{v['recall']:.3f}</td><td>{v['f1']:.3f}</td>"
                     f"<td>{v['support']}</td></tr>")
    return parts + ["</table>"]


def _per_label(r: dict, folder: Path) -> list[str]:
    parts = ["<h2>Per label</h2><table><tr><th>label</th><th>AP</th><th>precision</th><th>recall</th><th>F1</th>"
             "<th>threshold</th><th>images</th></tr>"]
    for c, v in r["metrics"]["per_label"].items():
        ap = "" if v["ap"] is None else f"{v['ap']:.3f}"
        parts.append(f"<tr><td>{e(c)}</td><td>{ap}</td><td>{v['precision']:.3f}</td><td>{v['recall']:.3f}</td>"
                     f"<td>{v['f1']:.3f}</td><td>{v['threshold']:.3f}</td><td>{v['support']}</td></tr>")
    parts.append("</table>")
    if (folder / "pr_curves.png").exists():
        parts.append("<img class='plot' src='pr_curves.png' alt='precision-recall curves'>")
    return parts


def _confusion(r: dict, folder: Path) -> list[str]:
    return ["<h2>Confusion matrix</h2><img class='plot' src='confusion.png' alt='confusion matrix'>"]


def _calibration(r: dict, folder: Path) -> list[str]:
    cal = r["metrics"]["calibration"]
    return [f"<h2>Calibration</h2><p>Expected calibration error {cal['ece']:.3f} over {cal['n_bins']} confidence bins: "
            "a well calibrated model's bars follow the diagonal.</p><img class='plot' src='reliability.png' "
            "alt='reliability diagram'>"]


def _mistakes(r: dict, folder: Path) -> list[str]:
    if not r.get("mistakes"):
        return []
    parts = ["<h2>Most confident mistakes</h2>"]
    for mk in r["mistakes"]:
        img = "".join(f"<img src='{e(mk[k])}' width=96 height=96 alt='{k}'>" for k in ("thumbnail", "heatmap")
                      if mk.get(k))
        said = (f"tag <b>{e(mk['predicted'])}</b> {e(mk['kind'])} ({mk['confidence']:.0%}); labels"
                if mk.get("kind") else f"<b>{e(mk['predicted'])}</b> ({mk['confidence']:.0%}) but is")
        parts.append(f"<div class='mk'>{img}<div>{said} <b>{e(mk['true'])}</b><br><small>{e(str(mk['path']))}</small><br>"
                     f"<i>{e(mk.get('description') or '')}</i></div></div>")
    return parts


RENDER = {"metrics": _cards, "ablations": _ablation, "few_shot": _few_shot, "per_class": _per_class,
          "per_label": _per_label, "confusion": _confusion, "calibration": _calibration, "mistakes": _mistakes}


def report_html(r: dict, folder: Path, title: str) -> str:
    """The static ``index.html`` of the results ``r`` written to ``folder``."""
    m, model, sections = r["metrics"], r["model"], sections_of(r)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>Model: encoders <code>{e(', '.join(model['encoders']))}</code>, fusion <code>{e(model['fusion'])}</code>, "
        f"head <code>{e(model['head'])}</code>; {m['n']} test images, {len(model['classes'])} classes"
        + (f"; {len(r['failures'])} unreadable file(s) skipped" if r.get("failures") else "")
        + ".</p>",
    ]
    if model.get("language"):
        parts.append(f"<p>{e(model['language']['summary'])}.</p>")
    for name in SECTIONS:
        if name in sections:
            parts += RENDER[name](r, folder)
        if name == "metrics" and r.get("search"):  # `--search`: the leaderboard, below the headline numbers
            from .search_report import leaderboard_html

            parts.append(leaderboard_html(r["search"], folder))
    from .timeline_report import timeline_html

    parts += timeline_html(r)
    if r.get("failures"):
        parts.append("<h2>Files that could not be read</h2><ul>" + "".join(
            f"<li>{e(f['path'])}: {e(f['reason'])}</li>" for f in r["failures"]) + "</ul>")
    parts.append(f"<p><small>Made by wordsight in {r.get('seconds', 0)} s; all numbers are in metrics.json.</small></p>"
                 "</body></html>")
    return "\n".join(parts)


def headline_table(results: dict) -> str:
    """A plain-text table of the headline numbers (for the terminal)."""
    m = results["metrics"]
    lines = [f"{'metric':<28}{'value':>10}"]
    for name, v in _metrics(m):
        _, label, percent = _display(name)
        if label is not None:
            lines.append(f"{label:<28}{v:>10.2%}" if percent else f"{label:<28}{v:>10.4f}")
    lines.append(f"{'test images':<28}{m['n']:>10d}")
    if results.get("ablation") and len(results["ablation"]) > 1:
        lines += ["", f"{'variant':<36}{'accuracy':>10}"]
        for row in results["ablation"]:
            lines.append(f"{row['name']:<36}{(pct(row['accuracy']) if 'accuracy' in row else 'n/a'):>10}")
    if results.get("few_shot"):
        fs = results["few_shot"]
        lines += ["", f"{'few-shot k':<14}" + "".join(f"{k:>9}" for k in fs["ks"])]
        for name, res in fs["methods"].items():
            lines.append(f"{name:<14}" + "".join(f"{res[str(k)]['mean']:>9.1%}" for k in fs["ks"]))
    return "\n".join(lines)
