"""The language side of anomaly detection (issue 23): words alone with no normal image, and the
words fused with the image score; recomputed from the zero-shot pipeline and numpy."""
from __future__ import annotations

import numpy as np
import pytest

import wordsight
from wordsight.cli import main
from wordsight.estimator.anomaly import AnomalyDetector
from wordsight.estimator.anomaly.words import ABNORMAL, NORMAL
from wordsight.zeroshot.pipeline import ZeroShotPipeline


def _log_odds(images, name, view):
    zs = ZeroShotPipeline(["ok", "bad"], method="descriptions", center="no",
                          descriptions={"ok": [t.format(name) for t in NORMAL], "bad": [t.format(name) for t in ABNORMAL]},
                          zero_shot_options={"include_name": False}).fit(view=view)
    L, _ = zs.predict_log_proba(images)
    return L[:, 0] - L[:, 1]


def test_words_alone_need_no_image(fashion_folder, tmp_path):
    det = AnomalyDetector(method="words", class_name="trousers").fit(None)
    images = sorted((fashion_folder / "test" / "Trouser").glob("*.png")) + sorted(
        (fashion_folder / "test" / "Bag").glob("*.png"))
    assert det.threshold_ == 0.0 and det.n_train_ == 0
    # the view is chosen from the images scored: light-on-dark Fashion-MNIST is inverted
    np.testing.assert_allclose(det.score_samples(images), _log_odds(images, "trousers", "invert"), atol=1e-6)
    det.save(tmp_path / "w")
    back = AnomalyDetector.load(tmp_path / "w")
    np.testing.assert_allclose(back.score_samples(images), det.score_samples(images), atol=1e-9)
    assert list(back.predict(images)) == [1 if s >= 0 else -1 for s in det.score_samples(images)]


def test_words_fused_with_the_image_score(fashion_folder):
    normal = fashion_folder / "train" / "Trouser"
    det = AnomalyDetector(class_name="trousers", text_weight=0.25).fit(normal)
    plain = AnomalyDetector().fit(normal)
    train = sorted(normal.glob("*.png"))
    held = -plain.scorer_.held_out_distance()  # leave-one-out knn (pinned in test_anomaly.py)
    words_train = _log_odds(train, "trousers", "invert")

    def robust(v):
        m = np.median(v)
        return m, 1.4826 * np.median(np.abs(v - m))

    (mi, si), (mw, sw) = robust(held), robust(words_train)
    np.testing.assert_allclose(det.image_ref_, [mi, si], rtol=1e-6)
    np.testing.assert_allclose(det.word_ref_, [mw, sw], rtol=1e-5)
    assert det.threshold_ == pytest.approx(np.quantile(0.75 * (held - mi) / si + 0.25 * (words_train - mw) / sw, 0.05),
                                           rel=1e-5)
    test = sorted((fashion_folder / "test").rglob("*.png"))
    want = 0.75 * (plain.score_samples(test) - mi) / si + 0.25 * (_log_odds(test, "trousers", "invert") - mw) / sw
    np.testing.assert_allclose(det.score_samples(test), want, rtol=1e-5, atol=1e-6)


def test_cli_fits_from_words_alone(fashion_folder, tmp_path, capsys):
    assert main(["fit", "--task", "anomaly", "--class-name", "trousers", "--out", str(tmp_path / "w"), "--quiet"]) == 0
    assert "(words, words) on 0 normal images" in capsys.readouterr().err
    assert wordsight.load(tmp_path / "w").method == "words"
    assert main(["fit", "--task", "anomaly", "--out", str(tmp_path / "none"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "needs normal images, or --class-name X" in err and len(err.splitlines()) == 1
    with pytest.raises(ValueError, match="method 'words' needs class_name"):
        AnomalyDetector(method="words").fit(None)
