"""The language side of anomaly detection (WinCLIP, Jeong et al. 2023, through wordsight's
zero-shot pipeline): an image's log-odds of "a photo of a flawless X" against "a photo of a damaged
X" (a few phrasings each, averaged as the ``descriptions`` method averages), read by
:class:`~wordsight.zeroshot.pipeline.ZeroShotPipeline` on its own view at full input size. No
normal image is needed: with none, the view is chosen from the images scored (as ``wordsight
zeroshot`` chooses it) and the threshold is 0 (normal as likely as damaged)."""
from __future__ import annotations

import numpy as np

NORMAL = ("a photo of a flawless {}", "a photo of a perfect {}", "a good photo of an intact {}",
          "a {} without any defect", "a clean, undamaged {}")
ABNORMAL = ("a photo of a damaged {}", "a photo of a broken {}", "a photo of a {} with a defect",
            "a flawed, scratched {}", "a photo of something that is not a {}")


def check_class_name(name) -> str:
    """A class name as a short single line, or a one-line ValueError."""
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or "\n" in name:
        raise ValueError(f"class_name must be a non-empty line of at most 200 characters, not {str(name)[:60]!r}")
    return name.strip()


class WordScorer:
    """``log_odds(X)``: per image read, log P(flawless) - log P(damaged); higher = more normal."""

    def __init__(self, class_name: str, encoder: str = "efficientnet-lite0", cache=None, quiet: bool = True):
        self.class_name, self.encoder, self.cache, self.quiet = check_class_name(class_name), encoder, cache, quiet

    def texts(self) -> dict[str, list[str]]:
        return {"normal": [t.format(self.class_name) for t in NORMAL],
                "abnormal": [t.format(self.class_name) for t in ABNORMAL]}

    def fit(self, X=None, view: str | None = None) -> "WordScorer":
        """The pipeline over the two texts; its view chosen from the normal images ``X`` (or ``view``),
        or, with neither, from each set of images scored."""
        from ...zeroshot.pipeline import ZeroShotPipeline

        self.pipeline_ = ZeroShotPipeline(["normal", "abnormal"], encoder=self.encoder, method="descriptions",
                                          descriptions=self.texts(), center="no", cache=self.cache, quiet=self.quiet,
                                          zero_shot_options={"include_name": False})
        self.fixed_view_ = view is not None or X is not None
        self.pipeline_.fit(X, view=view)
        return self

    def log_odds(self, X) -> tuple[np.ndarray, list, list]:
        """(log-odds of each image read, the samples read, the failures)."""
        from ...features.views import choose_view_of_samples
        from ...io.sources import open_source

        src = open_source(X)
        view = self.pipeline_.view_ if self.fixed_view_ or not src.samples else choose_view_of_samples(src.samples)
        fs = self.pipeline_.read(src, view=view)
        if not fs.samples:
            return np.zeros(0), [], list(fs.failures)
        L = self.pipeline_.log_proba_reading(self.pipeline_.reading(fs))
        return (L[:, 0] - L[:, 1]).astype(np.float64), list(fs.samples), list(fs.failures)


def _robust(values: np.ndarray) -> list[float]:
    """(median, scale): the scale 1.4826 x the median absolute deviation (a standard deviation for
    normal data), at least 1e-9."""
    v = np.asarray(values, np.float64)
    med = float(np.median(v))
    return [med, max(1.4826 * float(np.median(np.abs(v - med))), 1e-9)]


def fit_words(det, X) -> bool:
    """Fit ``det``'s word scorer when it has a ``class_name``; for method ``words`` fit all of it
    (True: nothing else to fit). With no normal images (``X`` None or empty) the threshold is 0."""
    det.words_ = None
    if det.method != "words" and det.class_name is None:
        return False
    if det.class_name is None:
        raise ValueError("method 'words' needs class_name: the name of what the normal images show")
    from ...io.sources import open_source

    images = X is not None and (not isinstance(X, (list, tuple)) or len(X) > 0)
    src = open_source(X) if images else None
    det.words_ = WordScorer(det.class_name, det.encoder_names[0], det.cache, det.quiet).fit(src)
    if det.method != "words":
        return False
    det.scorer_, det.image_ref_, det.word_ref_ = None, None, None
    if src is None:
        det.threshold_, det.n_train_, det.n_features_in_, det.fit_failures_ = 0.0, 0, 0, []
        return True
    w, samples, failures = det.words_.log_odds(src)
    if not len(w):
        raise ValueError(f"none of the normal images could be read ({len(failures)} failed)")
    det.threshold_ = float(np.quantile(w, det.reject_rate))
    det.n_train_, det.n_features_in_, det.fit_failures_ = len(w), 0, failures
    return True


def with_words(det, X, F):
    """``F`` (the image scorer's rows, or None for method ``words``) with each image's log-odds in
    ``prior_logits``, restricted to the images both readers read."""
    from ..feature_blocks import Featurized

    if getattr(det, "words_", None) is None:
        return F
    if isinstance(X, np.ndarray):
        raise ValueError("a detector with words reads images, not feature rows")
    from ...io.sources import open_source

    src = open_source(X)
    w, samples, failures = det.words_.log_odds(src)
    pos = {s.path: i for i, s in enumerate(src.samples)}
    if F is None:
        return Featurized(np.zeros((len(w), 0), np.float32), samples, failures, None, w, len(src.samples),
                          np.array([pos[s.path] for s in samples], np.int64))
    wi = {s.path: i for i, s in enumerate(samples)}
    keep = [i for i, s in enumerate(F.samples) if s.path in wi]
    seen = {f.path for f in F.failures}
    return Featurized(F.matrix[keep], [F.samples[i] for i in keep], F.failures + [f for f in failures if f.path not in seen],
                      None, w[[wi[F.samples[i].path] for i in keep]], F.n_inputs, F.rows[keep])


def fuse_held_out(det, X, F, held_out: np.ndarray) -> np.ndarray:
    """The normal images' fused held-out scores; sets the references both parts are standardised on."""
    W = with_words(det, X, F)
    keep = np.isin(F.rows, W.rows)
    det.image_ref_, det.word_ref_ = _robust(held_out[keep]), _robust(W.prior_logits)
    return fused(det, held_out[keep], W.prior_logits)


def fused(det, image: np.ndarray, words: np.ndarray) -> np.ndarray:
    """(1 - text_weight) x the image score + text_weight x the words' log-odds, each standardised by
    the normal images' (median, scale): on one scale without assuming either's units. Ranks were
    the first idea, but every image stranger than all normal ones ties at rank 0, and the order
    among abnormal images is what the AUROC needs."""
    (mi, si), (mw, sw) = det.image_ref_, det.word_ref_
    lam = float(det.text_weight)
    return (1 - lam) * (np.asarray(image) - mi) / si + lam * (np.asarray(words) - mw) / sw
