"""The search's section of the report: the leaderboard (cross-validated accuracy on the training
images, seconds per fit) as a table and a plot of accuracy against fit time per candidate."""
from __future__ import annotations

import html
from pathlib import Path

TOP_ROWS = 20  # rows of the leaderboard shown in the HTML (all are in leaderboard.csv / metrics.json)


def plot_leaderboard(rows: list[dict], path: Path) -> None:
    """Cross-validated accuracy vs seconds per fit, one point per candidate; ensembles as stars,
    screened candidates as hollow circles."""
    from ..training.search import is_screened
    from .plots import figure

    done = [r for r in rows if r.get("state") == "complete"]
    with figure(path, figsize=(7, 4.2)) as (fig, ax):
        for kind, style in (("single", dict(marker="o", color="tab:blue")),
                            ("vote", dict(marker="*", color="tab:orange", s=160)),
                            ("stack", dict(marker="*", color="tab:red", s=160))):
            pts = [r for r in done if r.get("kind") == kind]
            if pts:
                ax.scatter([max(r["fit_seconds"], 1e-3) for r in pts], [r["cv_accuracy"] for r in pts], label=kind,
                           alpha=0.8, **style)
        screened = [r for r in rows if is_screened(r.get("state", ""))]
        if screened:  # stage one of a large set: cross-validated on a subsample, so apart from the rest
            ax.scatter([max(r["fit_seconds"], 1e-3) for r in screened], [r["cv_accuracy"] for r in screened],
                       marker="o", facecolors="none", edgecolors="tab:gray", label="screened on a subsample")
        for r in done[:5]:
            ax.annotate(str(r["rank"]), (max(r["fit_seconds"], 1e-3), r["cv_accuracy"]), textcoords="offset points",
                        xytext=(5, 4), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("seconds per fit (log scale; an ensemble: the sum of its members')")
        ax.set_ylabel("cross-validated accuracy (training images)")
        ax.set_title("Search: accuracy vs fit time per candidate")
        ax.grid(alpha=0.3)
        ax.legend()


def leaderboard_html(search: dict, folder: Path) -> str:
    e = html.escape
    rows = search.get("leaderboard", [])
    parts = [f"<h2>Search: leaderboard</h2><p>{e(str(search.get('mode')))} search, {search.get('folds')}-fold "
             f"cross-validation on the {search.get('n_images')} training images only (the test images above were "
             f"never seen by it), {search.get('total_seconds', search.get('seconds'))} s. Chosen: "
             f"<b>{e(str(search.get('chosen')))}</b> ({e('; '.join(search.get('members') or []))}).</p>",
             "<table><tr><th>rank</th><th>model</th><th>cv accuracy</th><th>± std</th><th>s per fit</th><th>state</th></tr>"]
    for r in rows[:TOP_ROWS]:
        name = r["model"] + (f": {r['members']}" if r.get("members") else "")
        parts.append(f"<tr><td>{e(str(r['rank']))}</td><td>{e(name)}</td><td>{r['cv_accuracy']:.1%}</td>"
                     f"<td>{r['cv_std']:.1%}</td><td>{r['fit_seconds']:.2f}</td><td>{e(r['state'])}</td></tr>")
    parts.append("</table>")
    if (folder / "leaderboard.png").exists():
        parts.append("<img class='plot' src='leaderboard.png' alt='accuracy vs fit time per candidate'>")
    return "\n".join(parts)
