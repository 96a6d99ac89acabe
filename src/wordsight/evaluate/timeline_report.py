"""The report's video timelines: label bands (predicted, and true when known), the score curve over
time (the predicted class's probability, or a detector's score) and thumbnails of the frames."""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from .plots import literal, pyplot
from .timeline import TimelineCollector, VideoTimeline

THUMBNAILS = 6


def timeline_results(samples, predicted, scores, truth=None) -> list[dict]:
    """Per video among ``samples``: its frames, times, predicted labels, scores and true labels."""
    pred, true = TimelineCollector(), TimelineCollector()
    for i, s in enumerate(samples):
        pred.add(s.path, predicted[i], scores[i])
        if truth is not None:
            true.add(s.path, truth[i])
    by_file = {v.file: v for v in true.timelines()}
    refs = {}
    for s in samples:
        refs.setdefault(getattr(s.path, "file", None), []).append(s)
    out = []
    for v in pred.timelines():
        t = by_file.get(v.file)
        out.append({"file": v.file, "frames": v.frames, "times": v.times, "predicted": [str(x) for x in v.labels],
                    "scores": v.scores, "true": None if t is None else [str(x) for x in t.labels],
                    "segments": [seg.__dict__ for seg in v.segments()], "shares": v.shares(),
                    "_samples": sorted(refs.get(v.file, []), key=lambda s: s.path.frame)})
    return out


def _bands(ax, times, ends, labels, colours, y):
    for t0, t1, lab in zip(times, ends, labels):
        ax.barh(y, t1 - t0, left=t0, height=0.8, color=colours[lab], edgecolor="none")


def plot_timeline(tl: dict, path: Path, score_name: str = "probability of the predicted class") -> None:
    """The picture: bands, the score curve, a row of thumbnails."""
    plt = pyplot()
    v = VideoTimeline(tl["file"], tl["frames"], tl["times"], tl["predicted"], tl["scores"])
    ends = v.ends()
    names = sorted(set(tl["predicted"]) | set(tl["true"] or []))
    cmap = plt.get_cmap("tab10")
    colours = {n: cmap(i % 10) for i, n in enumerate(names)}
    thumbs = _thumbnails(tl)
    fig = plt.figure(figsize=(10, 5.2))
    grid = fig.add_gridspec(3, max(len(thumbs), 1), height_ratios=[1.1, 1.6, 1.5])
    ax = fig.add_subplot(grid[0, :])
    _bands(ax, v.times, ends, tl["predicted"], colours, 1)
    ticks = ["predicted"]
    if tl["true"]:
        _bands(ax, v.times, ends, tl["true"], colours, 0)
        ticks = ["true", "predicted"]
    ax.set_yticks(range(len(ticks)) if tl["true"] else [1], ticks)
    ax.set_xlim(v.times[0], ends[-1])
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colours[n]) for n in names],
              labels=[literal(n) for n in names], loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8,
              ncol=min(len(names), 6), frameon=False)
    ax.set_title(literal(Path(tl["file"]).name), loc="left")
    ax2 = fig.add_subplot(grid[1, :], sharex=ax)
    if tl["scores"]:
        ax2.plot(v.times, tl["scores"], marker=".", color="#333")
    ax2.set_ylabel(literal(score_name), fontsize=8)
    ax2.set_xlabel("time (s)")
    for j, (t, img) in enumerate(thumbs):
        axt = fig.add_subplot(grid[2, j])
        axt.imshow(img)
        axt.set_axis_off()
        axt.set_title(f"{t:.1f} s", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _thumbnails(tl: dict) -> list:
    from ..io.media_read import sample_image

    samples = tl.get("_samples") or []
    picks = sorted(set(np.linspace(0, len(samples) - 1, min(THUMBNAILS, len(samples))).round().astype(int))) \
        if samples else []
    out = []
    for i in picks:
        try:
            img = sample_image(samples[i])
            img.thumbnail((128, 128))
            out.append((samples[i].path.time_s, np.asarray(img)))
        except Exception:  # a thumbnail is a bonus: the timeline stands without it
            continue
    return out


def write_timelines(results: dict, folder: Path) -> None:
    """``timeline_NN.png`` for each video of ``results['timelines']`` (its ``_samples`` dropped)."""
    for i, tl in enumerate(results.get("timelines") or []):
        name = f"timeline_{i:02d}.png"
        plot_timeline(tl, folder / name)
        tl.pop("_samples", None)
        tl["plot"] = name


def timeline_html(results: dict) -> list[str]:
    if not results.get("timelines"):
        return []
    parts = ["<h2>Videos over time</h2>"]
    for tl in results["timelines"]:
        shares = ", ".join(f"{html.escape(str(k))} {100 * s:.1f}%" for k, s in tl["shares"].items())
        parts.append(f"<h3>{html.escape(Path(tl['file']).name)}</h3><p>share of time: {shares}</p>"
                     f"<img class='plot' src='{html.escape(tl.get('plot', ''))}' alt='timeline'>")
    return parts
