"""A few-shot learner built on the zero-shot classifier: the image probe plus the calibrated
prior's log-probabilities at a weight chosen by leave-one-out on the labelled images
(:mod:`.prior_strength`), never on a split-off set.

For an image with fused features ``x`` and zero-shot log-probabilities ``pi`` (the language
prior's output) the class scores are::

    z(x) = a * log_softmax(pi) + W phi(x) + b,     phi(x) = (x - mean) / scale

with ``mean`` and one global ``scale`` taken from the labelled images exactly as the image heads
standardise (:class:`~wordsight.estimator.heads.LinearHead`). ``W, b`` minimise the multinomial
log-loss of the labelled images plus ``|W|^2 / (2 C)`` (``b`` unpenalised, as scikit-learn's
logistic regression): they are the image probe itself, fitted without the prior.

- ``k = 0`` (no labels): ``a = 1, W = 0, b = 0``: exactly the zero-shot log-probabilities.
- with labels there are two experts, the zero-shot classifier and the image probe, and ``z`` is
  their logarithmic opinion pool (a product of experts; Genest & Zidek, Stat. Science 1986) with
  the prior at ``a = T/3`` by default (``T`` its calibration, below). How far the prior is
  trusted on this task is chosen on the labelled images when every class has two or more
  (:mod:`.prior_strength`: ``a`` in ``{0, T/3, T/2}`` by leave-one-out log-loss). The prior is
  centred on the other classes' share of the labelled images' mean
  (:mod:`wordsight.zeroshot.pipeline`, ``center="others"``).
  ``info["held_out"]`` keeps the held-out scores, zero-shot's beside them.
- why the image probe is fitted on its own (issue 26): fitted *with* the prior as an offset (a
  residual, the previous learner), it learned only what the prior got wrong on the labelled
  images; where the prior happened to be right and sure on all of them (Fashion-MNIST Trouser vs
  Bag: 68-77% right on new images, p = 0.91-0.95 on the 2-4 labelled ones) the residual stayed
  near zero and the prior's mistakes went uncorrected, 4-5 points below the image probe at one
  and two images per class. Fitted alone, the image probe keeps its full strength and the prior
  tips its close calls.
- the prior's calibration ``T`` is fitted on the labelled images themselves: the zero-shot
  classifier never saw their labels, so its predictions on them are honest held-out ones, the one
  place where a few labels can be used as a validation set without splitting them. ``T`` is the
  posterior mode under a unit-variance Gaussian around 1 (the classifier as calibrated), so one
  or two lucky images cannot make a weak prior dominate; a prior that is right on the support
  images gets ``T > 1`` and more weight (CLAP's reading of the support data).
- many labels: the leave-one-out choice goes to ``a = 0`` where the prior adds nothing, and the
  probe is then exactly the image probe.

``C`` (default 0.1) is the image heads' inverse penalty on the same standardised features: the
logistic head's default where it cannot cross-validate (one image per class: the middle of the
CLIP linear-probe grid 1e-4..1e2, heads.DEFAULT_C_GRID), so ``W, b`` are what the
image-only probe is with one image per class. On Fashion-MNIST (benchmarks/fewshot_prior.py, seed 0, scored on pool
images outside the support, never on test images) the probe's accuracy was flat within 1 point for
C from 0.02 to 0.1 at every k (measured with the residual form).

Relation to the research the issue names: LP++ (Huang et al., CVPR 2024) blends a linear probe
with the text classifier's logits with data-driven blending weights; here the blend is the
prior's weight ``a``, chosen on held-out labelled images. CLAP (Silva-Rodriguez et al., CVPR 2024)
keeps the probe near the zero-shot prototypes with a strength set from the zero-shot classifier's
performance on the support images; the image features here and the text space differ, so "near
the zero-shot classifier" is "its log-probabilities added to the image probe's scores", and the
support data set the prior's weight through its calibration ``T``. Tip-Adapter (Zhang et al., ECCV 2022) adds a cache
of the support images to the zero-shot logits; the dual form of this probe (``W`` is a
combination of the support images' features) is such a cache with a linear kernel and values
learned from the labels. A marginal-likelihood (Laplace / GP-evidence) choice of ``C`` was tried
first and dropped: with one image per class no two labels share a class, so the evidence always
prefers the prior alone (it chose the smallest C on every Fashion-MNIST draw at k = 1 and 2, 35%
where the image probe reaches 55-62%).

Arrays only: the probe never opens an image. ``logits`` (numpy) and ``to_torch`` (a module over
tensors) give the same numbers; ``state``/``from_state`` round-trip it exactly (arrays for
safetensors, plain floats in the JSON info).
"""
from __future__ import annotations

import numpy as np

from .._util.numerics import log_softmax
from . import prior_strength

# The image heads' inverse penalty where they cannot cross-validate (see the module doc).
DEFAULT_C = 0.1
HOW = {"image probe": "the image probe alone (best on held-out labelled images)",
       "third-weight prior": "the image probe plus the calibrated zero-shot log-probabilities at a third weight",
       "half-weight prior": "the image probe plus the calibrated zero-shot log-probabilities at half weight "
                            "(best on held-out labelled images)"}
# the residual form's (the multi-label probe, prior_strength.RESIDUAL_CANDIDATES)
HOW_RESIDUAL = {"image probe": HOW["image probe"],
                "equal-weight pool": "residual on the calibrated zero-shot log-probabilities, equal-weight pool",
                "prior-heavy pool": "residual on the calibrated zero-shot log-probabilities, the prior at full weight "
                                    "(best on held-out labelled images)"}
# The prior's calibration: Gaussian prior around 1 (as calibrated) with unit variance.
CALIBRATION_MEAN, CALIBRATION_VAR = 1.0, 1.0


class ProbeOptions:
    """The options of the prior probes (this one and the multi-label
    :class:`~.label_prior_probe.LabelPriorProbe`) and their fitted ``arrays`` and ``info``."""

    def __init__(self, *, C=None, class_weight=None, random_state=0, max_iter=1000, **hyper):
        if hyper:
            raise TypeError(f"unknown {type(self).__name__} option(s): {', '.join(sorted(hyper))}")
        self.C = C
        self.class_weight = class_weight
        self.random_state = random_state  # the fit is deterministic; kept for the heads' interface
        self.max_iter = max_iter
        self.arrays: dict[str, np.ndarray] = {}
        self.info: dict = {}

    def params(self) -> dict:
        return {"C": self.C, "class_weight": self.class_weight, "random_state": self.random_state,
                "max_iter": self.max_iter}

    def image_part(self, X, prior) -> tuple[np.ndarray, np.ndarray]:
        """(``W x + b`` of the standardised rows ``X``, ``prior`` as float64), shapes checked."""
        X = np.asarray(X, np.float64)
        prior = np.asarray(prior, np.float64)
        W = self.arrays["W"]
        if X.ndim != 2 or X.shape[1] != W.shape[1]:
            raise ValueError(f"X must be (m, {W.shape[1]}), got {X.shape}")
        if prior.shape != (len(X), W.shape[0]):
            raise ValueError(f"prior must be ({len(X)}, {W.shape[0]}), got {prior.shape}")
        return ((X - self.arrays["mean"]) / self.info["scale"]) @ W.T + self.arrays["b"], prior


class PriorProbe(ProbeOptions):
    """Linear probe on image features with the zero-shot classifier's log-probabilities as its
    offset (see the module doc). ``C``: inverse penalty of the residual on standardised features
    (default :data:`DEFAULT_C`); ``class_weight``: None, "balanced" or a dict; ``max_iter``: L-BFGS
    iterations."""

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, prior, n_classes: int) -> "PriorProbe":
        """``X`` (n, d) fused image features, ``y`` (n,) class indices, ``prior`` (n, C) zero-shot
        log-probabilities (or logits) of the same images; ``n`` may be 0."""
        from threadpoolctl import threadpool_limits

        X, y, prior = _check(X, y, prior, n_classes)
        if self.C is not None and not isinstance(self.C, (int, float, np.number)):
            raise ValueError(f"PriorProbe takes one C, not {self.C!r}: it makes no held-out search")
        C = float(DEFAULT_C if self.C is None else self.C)
        if not C > 0:
            raise ValueError(f"C must be > 0, got {self.C!r}")
        # One BLAS thread: small matrices, and on a busy machine multi-threaded BLAS spin-waits
        # made them 10x slower (the same finding as heads.Head.fit).
        with threadpool_limits(1, user_api="blas"):
            return self._fit(X, y, prior, int(n_classes), C)

    def _fit(self, X, y, prior, n_classes: int, C: float) -> "PriorProbe":
        n, d = X.shape
        self.arrays = {"mean": np.zeros(d), "W": np.zeros((n_classes, d)), "b": np.zeros(n_classes)}
        self.info = {"n_classes": n_classes, "n_features": d, "n_train": n, "C": C, "scale": 1.0,
                     "calibration": 1.0, "strength": 1.0, "how": "no labelled images: the zero-shot classifier"}
        if n == 0:
            return self
        pi = log_softmax(prior)
        weights = _sample_weights(y, n_classes, self.class_weight)
        T = calibrate(pi, y, weights)
        mean = X.mean(0)
        spread = float(np.sqrt(np.mean((X - mean) ** 2)))  # one global scale, as the heads
        scale = spread if spread > 1e-12 else 1.0
        Phi = (X - mean) / scale
        # W lies in the span of the labelled images (representer theorem): fit in r = rank <= n
        # dimensions, Phi = Psi @ Vt, W = W_r @ Vt.
        U, S, Vt = np.linalg.svd(Phi, full_matrices=False)
        keep = S > 1e-10 * S[0] if len(S) and S[0] > 0 else np.zeros(len(S), bool)
        Psi, Vt = U[:, keep] * S[keep], Vt[keep]
        choice, scores = self._choose(Psi, pi, y, weights, n_classes, C)
        a = prior_strength.CANDIDATES[choice] * T
        # the image probe on its own (module doc: not a residual on the prior)
        Wr, b, converged = _fit_residual(Psi, np.zeros_like(pi), y, weights, n_classes, C, self.max_iter)
        self.arrays = {"mean": mean, "W": Wr @ Vt, "b": b}
        self.info.update(scale=scale, calibration=T, strength=a, converged=converged, choice=choice,
                         held_out=scores, how=HOW[choice],
                         zero_shot_right=float(np.sum(weights * (pi.argmax(1) == y)) / np.sum(weights)))
        return self

    def _choose(self, Psi, pi, y, weights, n_classes, C) -> tuple[str, dict]:
        """The prior's weight chosen on held-out labelled images (:mod:`.prior_strength`); with one
        image of some class there is no held-out image of it for the image probe: the default."""
        if np.bincount(y, minlength=n_classes).min() < 2:
            return prior_strength.DEFAULT, {}

        def fit(P, offset, yy, ww):
            return _fit_residual(P, offset, yy, ww, n_classes, C, self.max_iter)[:2]

        scores = prior_strength.held_out_scores(fit, calibrate, Psi, pi, y, weights, self.info["n_features"])
        return prior_strength.choose(scores), scores

    # ------------------------------------------------------------------ predict
    def logits(self, X, prior) -> np.ndarray:
        """(m, C) log-probabilities of images with fused features ``X`` and zero-shot
        log-probabilities (or logits) ``prior``."""
        image, prior = self.image_part(X, prior)
        return log_softmax(self.info["strength"] * log_softmax(prior) + image)

    def predict_proba(self, X, prior) -> np.ndarray:
        return np.exp(self.logits(X, prior))

    def linear(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(W (C, d), b (C,), a): scores = a * log_softmax(prior) + X @ W.T + b (then log_softmax)."""
        W = self.arrays["W"] / self.info["scale"]
        return W, self.arrays["b"] - W @ self.arrays["mean"], float(self.info["strength"])

    # ------------------------------------------------------------------ state
    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        return {k: np.ascontiguousarray(v) for k, v in self.arrays.items()}, dict(self.info)

    @classmethod
    def from_state(cls, arrays: dict, info: dict, params: dict | None = None) -> "PriorProbe":
        missing = sorted({"mean", "W", "b"} - set(arrays)) + sorted({"scale", "strength"} - set(info))
        if missing:
            raise ValueError(f"prior probe state lacks {', '.join(missing)}")
        probe = cls(**(params or {}))
        probe.arrays = {k: np.asarray(arrays[k], np.float64) for k in ("mean", "W", "b")}
        probe.info = dict(info)
        C, d = probe.arrays["W"].shape if probe.arrays["W"].ndim == 2 else (0, 0)
        if not C or probe.arrays["mean"].shape != (d,) or probe.arrays["b"].shape != (C,):
            raise ValueError(f"prior probe state shapes disagree: W {probe.arrays['W'].shape}, "
                             f"mean {probe.arrays['mean'].shape}, b {probe.arrays['b'].shape}")
        return probe

    def to_torch(self):
        """A ``torch.nn.Module``: ``forward(X, prior)`` -> (m, C) log-probabilities (float64)."""
        import torch

        class PriorProbeModule(torch.nn.Module):
            def __init__(self, arrays: dict, strength: float, scale: float):
                super().__init__()
                for k, v in arrays.items():
                    self.register_buffer(k, torch.from_numpy(np.array(v, np.float64)))
                self.strength, self.scale = strength, scale

            def forward(self, X, prior):
                X, prior = X.to(self.W.dtype), prior.to(self.W.dtype)
                z = (self.strength * torch.log_softmax(prior, 1)
                     + ((X - self.mean) / self.scale) @ self.W.T + self.b)
                return torch.log_softmax(z, 1)

        return PriorProbeModule(self.arrays, float(self.info["strength"]), float(self.info["scale"]))


# ---------------------------------------------------------------------- the maths
def calibrate(pi: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The posterior mode of the temperature ``T`` of ``softmax(T * pi)`` on labelled images:
    weighted log-loss plus ``(T - 1)^2 / 2`` (a unit-variance Gaussian around 1). Newton's method
    on a convex 1-d function (the log-loss is convex in T)."""
    weights = np.ones(len(y)) if weights is None else weights
    rows = np.arange(len(y))
    T = CALIBRATION_MEAN
    for _ in range(100):
        p = np.exp(log_softmax(T * pi))
        m = np.sum(p * pi, 1)  # E_p[pi]
        grad = np.sum(weights * (m - pi[rows, y])) + (T - CALIBRATION_MEAN) / CALIBRATION_VAR
        hess = np.sum(weights * (np.sum(p * pi * pi, 1) - m * m)) + 1.0 / CALIBRATION_VAR
        step = grad / hess
        T = max(T - step, 0.0)
        if abs(step) < 1e-12:
            break
    return float(T)


def _check(X, y, prior, n_classes):
    X = np.asarray(X, np.float64)
    y = np.asarray(y)
    prior = np.asarray(prior, np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-d array (n, d), got shape {X.shape}")
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    if y.ndim != 1 or len(y) != len(X) or prior.shape != (len(X), n_classes):
        raise ValueError(f"X {X.shape}, y {y.shape} and prior {prior.shape} disagree (prior must be (n, {n_classes}))")
    if len(y) and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"y must hold class indices in [0, {n_classes}), got {y.min()}..{y.max()}")
    if not (np.isfinite(X).all() and np.isfinite(prior).all()):
        raise ValueError("X and prior must be finite")
    return X, y, prior


def _sample_weights(y, n_classes, class_weight) -> np.ndarray:
    if class_weight is None:
        return np.ones(len(y))
    if isinstance(class_weight, str) and class_weight == "balanced":
        counts = np.bincount(y, minlength=n_classes).astype(float)
        return len(y) / (n_classes * counts[y])
    if isinstance(class_weight, dict):
        return np.asarray([float(class_weight.get(int(c), 1.0)) for c in y])
    raise ValueError(f"class_weight must be None, 'balanced' or a dict, not {class_weight!r}")


def objective(theta, Psi, offset, Y, weights, C):
    """Weighted multinomial log-loss of ``offset + Psi @ W.T + b`` plus ``|W|^2 / (2 C)``, and its
    gradient; ``theta`` = (vec W (n_classes x r), b)."""
    n_classes, r = Y.shape[1], Psi.shape[1]
    W, b = theta[: n_classes * r].reshape(n_classes, r), theta[n_classes * r:]
    lp = log_softmax(offset + Psi @ W.T + b)
    G = (np.exp(lp) - Y) * weights[:, None]
    f = -float(np.sum(weights * np.sum(lp * Y, 1))) + 0.5 * float(np.sum(W * W)) / C
    return f, np.concatenate([(G.T @ Psi + W / C).ravel(), G.sum(0)])


def _fit_residual(Psi, offset, y, weights, n_classes, C, max_iter):
    from scipy.optimize import minimize

    Y = np.eye(n_classes)[y]
    r = Psi.shape[1]
    res = minimize(objective, np.zeros(n_classes * (r + 1)), args=(Psi, offset, Y, weights, C), jac=True,
                   method="L-BFGS-B", options={"maxiter": max_iter, "gtol": 1e-9, "ftol": 1e-15})
    return res.x[: n_classes * r].reshape(n_classes, r), res.x[n_classes * r:].copy(), bool(res.success)
