"""The gate a lower precision (bf16, int8) must pass before its features are used.

Measured on held-out images (the caller's, or crops of scikit-image photos that calibration never
sees), against the fp32 model on the same inputs:

- embeddings: mean cosine to fp32 >= ``MIN_COSINE_MEAN`` and the worst image >= ``MIN_COSINE_MIN``;
- ImageNet top-1 agrees with fp32 on >= ``MIN_CONFIDENT_TOP1`` of the images where fp32 itself is
  confident (softmax >= ``CONFIDENT_P``): where fp32 hesitates between two classes any rounding flips
  it, which says nothing about the features (the old gate, 99% of all crops, was failed by fp32's
  own coin tosses: EfficientNet-Lite0's int8 agreed on 81% overall);
- a linear probe fitted on fp32 embeddings of half the images (their labels: the caller's, else the
  photo each crop came from, else fp32's ImageNet class) predicts the same class from the
  candidate's embeddings of the other half on >= ``MIN_PROBE_UNCHANGED`` of them: what a head
  trained on these features would see.

Failing any figure refuses the precision with every measured figure in the message.
"""
from __future__ import annotations

import numpy as np

MIN_COSINE_MEAN = 0.99
MIN_COSINE_MIN = 0.94
CONFIDENT_P = 0.5
MIN_CONFIDENT_TOP1 = 0.99
MIN_PROBE_UNCHANGED = 0.98
GATE_VERSION = 2  # stored reports of another version are measured again


class QuantizationRefused(RuntimeError):
    """A lower precision failed the gate; ``figures`` holds every measured figure (``agreement``:
    top-1 agreement where fp32 is confident, ``n``: held-out images)."""

    def __init__(self, message: str, agreement: float, n: int, figures: dict | None = None):
        super().__init__(message)
        self.agreement, self.n, self.figures = agreement, n, dict(figures or {})


PrecisionRefused = QuantizationRefused


def _softmax(z: np.ndarray) -> np.ndarray:
    from ..._util.numerics import softmax

    return softmax(np.asarray(z, np.float64))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.sum(a * b, 1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def probe_unchanged(ref: np.ndarray, new: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """Share of a linear probe's predictions (fitted on fp32 ``ref`` of the even rows) that stay the
    same on the odd rows when it reads ``new`` instead of ``ref``; and the number of rows compared."""
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels)
    train, test = np.arange(0, len(ref), 2), np.arange(1, len(ref), 2)
    if len(np.unique(labels[train])) < 2 or len(test) == 0:
        return float("nan"), 0
    from ..._util.numerics import l2_normalize

    probe = LogisticRegression(C=1.0, max_iter=2000).fit(l2_normalize(ref[train]), labels[train])
    same = probe.predict(l2_normalize(ref[test])) == probe.predict(l2_normalize(new[test]))
    return float(same.mean()), int(len(test))


def measure(ref: dict[str, np.ndarray], new: dict[str, np.ndarray], labels=None) -> dict:
    """The gate's figures for candidate outputs ``new`` against fp32 outputs ``ref`` (same images)."""
    cos = cosines(ref["embedding"], new["embedding"])
    figures = {"n": int(len(cos)), "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min())}
    if "logits" in ref:
        p = _softmax(ref["logits"])
        confident = p.max(1) >= CONFIDENT_P
        same = ref["logits"].argmax(1) == new["logits"].argmax(1)
        figures.update(n_confident=int(confident.sum()), top1_all=float(same.mean()),
                       top1_confident=float(same[confident].mean()) if confident.any() else float("nan"))
        if labels is None:
            labels = ref["logits"].argmax(1)
    if labels is not None:
        share, n = probe_unchanged(ref["embedding"], new["embedding"], labels)
        figures.update(probe_unchanged=share, n_probe=n)
    return figures


def problems(figures: dict) -> list[str]:
    """What the figures fail, one phrase each (empty: the precision passes)."""
    out = []
    if not figures["cosine_mean"] >= MIN_COSINE_MEAN:
        out.append(f"mean embedding cosine {figures['cosine_mean']:.4f} < {MIN_COSINE_MEAN}")
    if not figures["cosine_min"] >= MIN_COSINE_MIN:
        out.append(f"minimum embedding cosine {figures['cosine_min']:.4f} < {MIN_COSINE_MIN}")
    top1 = figures.get("top1_confident")
    if top1 is not None and figures.get("n_confident", 0) > 0 and not top1 >= MIN_CONFIDENT_TOP1:
        out.append(f"top-1 agreement {top1:.1%} < {MIN_CONFIDENT_TOP1:.0%} on the {figures['n_confident']} "
                   f"images where fp32 is confident (p >= {CONFIDENT_P})")
    probe = figures.get("probe_unchanged")
    if probe is not None and figures.get("n_probe", 0) > 0 and not probe >= MIN_PROBE_UNCHANGED:
        out.append(f"linear probe unchanged on {probe:.1%} < {MIN_PROBE_UNCHANGED:.0%} of {figures['n_probe']} images")
    return out


def summary(figures: dict) -> str:
    parts = [f"cosine mean {figures['cosine_mean']:.4f} min {figures['cosine_min']:.4f}"]
    if "top1_confident" in figures:
        parts.append(f"top-1 where fp32 is confident {figures['top1_confident']:.1%} of {figures['n_confident']}")
    if "probe_unchanged" in figures:
        parts.append(f"probe unchanged {figures['probe_unchanged']:.1%}")
    return ", ".join(parts) + f" ({figures['n']} held-out images)"


def check(figures: dict, what: str) -> None:
    """Raise :class:`QuantizationRefused` naming every failed figure, or return."""
    failed = problems(figures)
    if failed:
        raise QuantizationRefused(f"{what} refused: {'; '.join(failed)}. Measured: {summary(figures)}; "
                                  "use precision='fp32'", figures.get("top1_confident", float("nan")),
                                  figures["n"], figures)
