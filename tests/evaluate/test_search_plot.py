"""The search's plot: screened candidates (stage one on a subsample) drawn apart, as hollow grey circles."""
import numpy as np
from PIL import Image

from wordsight.evaluate.search_report import plot_leaderboard


def _grey_pixels(path) -> int:
    arr = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int((np.abs(arr - 127).max(-1) <= 6).sum())  # tab:gray is (127, 127, 127)


def test_screened_rows_are_drawn_as_grey_circles(tmp_path):
    ranked = [{"rank": 1, "kind": "single", "state": "complete", "cv_accuracy": 0.93, "fit_seconds": 200.0}]
    screened = [{"rank": "", "kind": "single", "state": "screened on 6000 images", "cv_accuracy": a,
                 "fit_seconds": s} for a, s in ((0.88, 3.0), (0.90, 14.0), (0.83, 34.0))]
    plot_leaderboard(ranked, tmp_path / "a.png")
    plot_leaderboard(ranked + screened, tmp_path / "b.png")
    assert _grey_pixels(tmp_path / "b.png") > _grey_pixels(tmp_path / "a.png") + 30  # 3 circles: +57 measured
