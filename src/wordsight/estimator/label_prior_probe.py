"""The few-shot prior probe for label sets (multi-label): each label's zero-shot tag log-odds
("X" against "none", :mod:`wordsight.zeroshot.tags`) as a fixed offset, the image features
learning a residual on it, label by label.

For an image with fused features ``x`` and zero-shot tag log-odds ``pi`` (one per label) the
label scores are independent::

    z_j(x) = a_j * pi_j(x) + w_j . phi(x) + b_j,     p_j = sigmoid(z_j),  phi(x) = (x - mean) / scale

which is :mod:`.prior_probe` with a sigmoid per label in place of the softmax over classes:

- ``k = 0`` (no labelled images): ``a = 1, W = 0, b = 0``: exactly the zero-shot tag probabilities.
- each label's calibration ``T_j`` is the posterior mode of the temperature of ``sigmoid(T pi_j)``
  on the labelled images (:func:`.prior_probe.calibrate` on the pair {none, tag}: a Gaussian
  around 1, so a few lucky images cannot make a weak prior dominate);
- the prior's weight is one choice for all labels among :data:`.prior_strength.RESIDUAL_CANDIDATES`
  (``a_j = mult * T_j``: the image probe alone, the equal-weight pool, the prior at full weight),
  the one whose held-out predictions of the labelled images have the lowest log-loss (summed
  over labels, per image; each candidate calibrated per label first) if it beats the equal-weight
  pool by :data:`.prior_strength.MARGIN`; held out: leave-one-out up to 40 images, else 5 shuffled
  folds, each fold refitting the calibration and the standardisation. With a label that has
  fewer than 2 positive or 2 negative images there is nothing to hold out: the pool.
- many labels: the log-loss grows with ``n`` while the penalty does not: the residual takes over
  and the probe becomes the image probe (one-vs-rest logistic regression with the prior as one
  more, bounded, input).

``W, b`` minimise the binary cross-entropy of every label plus ``|W|^2 / (2 C)`` (``b``
unpenalised, as scikit-learn's logistic regression), in the span of the labelled images (the
representer theorem, as :class:`.prior_probe.PriorProbe`). Written here rather than as one
scikit-learn ``LogisticRegression`` per label because scikit-learn takes no fixed per-row offset.
Arrays only; ``logits`` (numpy, per-label log-sigmoids) and ``to_torch`` (the per-label scores
``z``, whose log-sigmoid the head's ``log_output_torch`` takes) give the same numbers.
"""
from __future__ import annotations

import numpy as np

from .._util.numerics import log_sigmoid
from . import prior_strength
from .prior_probe import DEFAULT_C, HOW_RESIDUAL, ProbeOptions, calibrate

LABEL_SETS = "label sets"  # info["targets"]: what tells this probe's saved state from PriorProbe's
MIN_HELD_OUT = 2  # positive and negative images each label needs for the held-out choice
FOLDS = 5


def label_calibration(pi: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """(L,) per-label temperatures of ``sigmoid(T * pi_j)`` on labelled images (``pi`` (n, L) log-odds)."""
    return np.array([calibrate(np.stack([np.zeros(len(pi)), pi[:, j]], 1), Y[:, j].astype(np.int64))
                     for j in range(pi.shape[1])])


def bce(z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """(n, L) binary cross-entropy of scores ``z`` against 0/1 ``Y``."""
    return -(Y * log_sigmoid(z) + (1 - Y) * log_sigmoid(-z))


def objective(theta, Psi, offset, Y, C):
    """Binary cross-entropy of ``offset + Psi @ W.T + b`` summed over labels and images, plus
    ``|W|^2 / (2 C)``, and its gradient; ``theta`` = (vec W (L x r), b)."""
    L, r = Y.shape[1], Psi.shape[1]
    W, b = theta[: L * r].reshape(L, r), theta[L * r:]
    z = offset + Psi @ W.T + b
    G = np.exp(-np.logaddexp(0.0, -z)) - Y  # sigmoid(z) - Y
    f = float(np.sum(bce(z, Y))) + 0.5 * float(np.sum(W * W)) / C
    return f, np.concatenate([(G.T @ Psi + W / C).ravel(), G.sum(0)])


def fit_residual(Psi, offset, Y, C, max_iter=1000):
    """(W (L, r), b (L,), converged) of the penalised residual (L-BFGS from W = 0, b = 0)."""
    from scipy.optimize import minimize

    L, r = Y.shape[1], Psi.shape[1]
    res = minimize(objective, np.zeros(L * (r + 1)), args=(Psi, offset, Y, C), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": 1e-9, "ftol": 1e-15})
    return res.x[: L * r].reshape(L, r), res.x[L * r:].copy(), bool(res.success)


def held_out_folds(n: int, seed: int) -> list[np.ndarray]:
    """Leave-one-out up to :data:`.prior_strength.MAX_LEAVE_ONE_OUT` images, else :data:`FOLDS`
    shuffled folds (seeded)."""
    if n <= prior_strength.MAX_LEAVE_ONE_OUT:
        return [np.array([i]) for i in range(n)]
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(order[f::FOLDS]) for f in range(FOLDS)]


def held_out_scores(Phi, pi, Y, C, seed=0, max_iter=1000) -> dict[str, dict]:
    """Per candidate (and zero-shot alone), the held-out log-loss (nats per image, summed over
    labels, after each label's own temperature on the held-out scores) and mAP."""
    from .tasks.label_scores import mean_average_precision

    n, d = Phi.shape
    held_z = {name: np.zeros(Y.shape) for name in (*prior_strength.RESIDUAL_CANDIDATES, prior_strength.ZERO_SHOT)}
    for held in held_out_folds(n, seed):
        train = np.setdiff1d(np.arange(n), held)
        T = label_calibration(pi[train], Y[train])
        mean = Phi[train].mean(0)
        spread = float(np.sqrt(np.mean((Phi[train] - mean) ** 2))) or 1.0
        P_train, P_held = (Phi[train] - mean) / spread, (Phi[held] - mean) / spread
        held_z[prior_strength.ZERO_SHOT][held] = T * pi[held]
        for name, mult in prior_strength.RESIDUAL_CANDIDATES.items():
            W, b, _ = fit_residual(P_train, mult * T * pi[train], Y[train], C, max_iter)
            held_z[name][held] = mult * T * pi[held] + P_held @ W.T + b
    out = {}
    for name, z in held_z.items():
        t = label_calibration(z, Y)  # each candidate's own temperature: how well it ranks, not how sure it is
        out[name] = {"mAP": float(mean_average_precision(Y, z)),
                     "log_loss": float(np.sum(bce(t * z, Y)) / n)}
    return out


class LabelPriorProbe(ProbeOptions):
    """Per-label linear probe on image features with the zero-shot tag log-odds as its offset (see
    the module doc). ``C``: inverse penalty of the residual on standardised features (default
    :data:`.prior_probe.DEFAULT_C`); ``max_iter``: L-BFGS iterations."""

    def fit(self, X, Y, prior, n_labels: int) -> "LabelPriorProbe":
        """``X`` (n, d) fused image features, ``Y`` (n, L) 0/1 label sets, ``prior`` (n, L) tag
        log-odds of the same images; ``n`` may be 0."""
        from threadpoolctl import threadpool_limits

        X, Y, prior = _check(X, Y, prior, n_labels)
        C = float(DEFAULT_C if self.C is None else self.C)
        if not C > 0:
            raise ValueError(f"C must be > 0, got {self.C!r}")
        with threadpool_limits(1, user_api="blas"):
            return self._fit(X, Y, prior, C)

    def _fit(self, X, Y, pi, C) -> "LabelPriorProbe":
        n, d = X.shape
        L = Y.shape[1]
        self.arrays = {"mean": np.zeros(d), "W": np.zeros((L, d)), "b": np.zeros(L), "a": np.ones(L)}
        self.info = {"targets": LABEL_SETS, "n_classes": L, "n_features": d, "n_train": n, "C": C, "scale": 1.0,
                     "calibration": 1.0, "strength": 1.0, "how": "no labelled images: the zero-shot tags"}
        if n == 0:
            return self
        T = label_calibration(pi, Y)
        mean = X.mean(0)
        spread = float(np.sqrt(np.mean((X - mean) ** 2)))
        scale = spread if spread > 1e-12 else 1.0
        U, S, Vt = np.linalg.svd((X - mean) / scale, full_matrices=False)
        keep = S > 1e-10 * S[0] if len(S) and S[0] > 0 else np.zeros(len(S), bool)
        Psi, Vt = U[:, keep] * S[keep], Vt[keep]
        counts = Y.sum(0)
        scores = {}
        choice = prior_strength.RESIDUAL_DEFAULT
        if min(counts.min(), (n - counts).min()) >= MIN_HELD_OUT:
            seed = self.random_state if isinstance(self.random_state, int) else 0
            scores = held_out_scores(Psi, pi, Y, C, seed, self.max_iter)
            choice = prior_strength.choose(scores, prior_strength.RESIDUAL_CANDIDATES, prior_strength.RESIDUAL_DEFAULT)
        a = prior_strength.RESIDUAL_CANDIDATES[choice] * T
        Wr, b, converged = fit_residual(Psi, a * pi, Y, C, self.max_iter)
        self.arrays = {"mean": mean, "W": Wr @ Vt, "b": b, "a": a}
        self.info.update(scale=scale, calibration=float(np.mean(T)), strength=float(np.mean(a)), converged=converged,
                         choice=choice, held_out=scores, how=HOW_RESIDUAL[choice].replace("log-probabilities", "tag log-odds"),
                         zero_shot_right=float(np.mean((pi > 0) == (Y > 0))))
        return self

    # ------------------------------------------------------------------ predict
    def scores(self, X, prior) -> np.ndarray:
        """(m, L) per-label scores ``z`` (their sigmoid: the probabilities)."""
        image, prior = self.image_part(X, prior)
        return self.arrays["a"] * prior + image

    def logits(self, X, prior) -> np.ndarray:
        """(m, L) per-label log-probabilities (log-sigmoids)."""
        return log_sigmoid(self.scores(X, prior))

    def predict_proba(self, X, prior) -> np.ndarray:
        return np.exp(self.logits(X, prior))

    # ------------------------------------------------------------------ state
    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        return {k: np.ascontiguousarray(v) for k, v in self.arrays.items()}, dict(self.info)

    @classmethod
    def from_state(cls, arrays: dict, info: dict, params: dict | None = None) -> "LabelPriorProbe":
        missing = sorted({"mean", "W", "b", "a"} - set(arrays)) + sorted({"scale"} - set(info))
        if missing:
            raise ValueError(f"label prior probe state lacks {', '.join(missing)}")
        probe = cls(**(params or {}))
        probe.arrays = {k: np.asarray(arrays[k], np.float64) for k in ("mean", "W", "b", "a")}
        probe.info = dict(info)
        L, d = probe.arrays["W"].shape if probe.arrays["W"].ndim == 2 else (0, 0)
        if not L or probe.arrays["mean"].shape != (d,) or any(probe.arrays[k].shape != (L,) for k in ("a", "b")):
            raise ValueError(f"label prior probe state shapes disagree: W {probe.arrays['W'].shape}, "
                             f"mean {probe.arrays['mean'].shape}, a {probe.arrays['a'].shape}, b {probe.arrays['b'].shape}")
        return probe

    def to_torch(self):
        """A ``torch.nn.Module``: ``forward(X, prior)`` -> (m, L) per-label scores ``z`` (float64)."""
        import torch

        class LabelPriorProbeModule(torch.nn.Module):
            def __init__(self, arrays: dict, scale: float):
                super().__init__()
                for k, v in arrays.items():
                    self.register_buffer(k, torch.from_numpy(np.array(v, np.float64)))
                self.scale = scale

            def forward(self, X, prior):
                X, prior = X.to(self.W.dtype), prior.to(self.W.dtype)
                return self.a * prior + ((X - self.mean) / self.scale) @ self.W.T + self.b

        return LabelPriorProbeModule(self.arrays, float(self.info["scale"]))


def _check(X, Y, prior, n_labels):
    X, Y, prior = (np.asarray(v, np.float64) for v in (X, Y, prior))
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-d array (n, d), got shape {X.shape}")
    if Y.shape != (len(X), n_labels) or prior.shape != (len(X), n_labels):
        raise ValueError(f"X {X.shape}, Y {Y.shape} and prior {prior.shape} disagree (Y and prior must be "
                         f"(n, {n_labels}))")
    if not np.isin(Y, (0.0, 1.0)).all():
        raise ValueError("Y must be a 0/1 label-set matrix")
    if not (np.isfinite(X).all() and np.isfinite(prior).all()):
        raise ValueError("X and prior must be finite")
    return X, Y, prior
