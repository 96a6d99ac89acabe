"""The head interface: fit on fused feature arrays, then predict from learned arrays alone.

A head is fitted with scikit-learn (or torch, or a few lines of numpy) and keeps only its learned
arrays, so a head rebuilt from a saved folder (safetensors, no pickle) predicts exactly what the
fitted one did. Each head holds its maths once in two forms that parity tests keep equal:
``logits`` (numpy: what ``predict_proba`` runs) and ``to_torch()`` (what explanations run, and
what the ONNX export traces: :mod:`wordsight.export.torch_graph`). A head never sees an image.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import StrOptions

from ..._util.numerics import log_sigmoid, log_softmax, softmax

# Above this many matrix entries (images x features) a head uses every BLAS thread, and the C
# search uses one held-out split with warm starts instead of k-fold cross-validation.
LARGE_PROBLEM = 5_000_000
LABEL_SETS = "label sets"  # info["targets"] of a head fitted on (N, L) multi-label targets


class Head(BaseEstimator):
    """Base class: ``fit(X, y, n_classes)``, ``logits(X)``, ``to_torch()``,
    ``state()`` / ``from_state()``. Subclasses set ``name``, take every option as an explicit
    keyword of ``__init__`` (scikit-learn's ``get_params`` / ``set_params`` / ``clone`` work), and
    implement ``_fit`` and ``logits``. What a fit learned is ``arrays`` and ``info``."""

    name: ClassVar[str] = ""
    differentiable: ClassVar[bool] = True  # gradients reach the features (Grad-CAM works)
    multilabel: ClassVar[bool] = False  # fits (N, L) 0/1 label targets with independent per-label scores
    _parameter_constraints: ClassVar[dict] = {"class_weight": [StrOptions({"balanced"}), dict, None]}

    def fit(self, X: np.ndarray, y: np.ndarray, n_classes: int) -> "Head":
        """Learn from ``X`` (N, F) and class indices ``y`` (N,) in ``range(n_classes)``, or, for a
        head that can (``multilabel``), an (N, n_classes) 0/1 matrix of label sets."""
        from threadpoolctl import threadpool_limits

        # One BLAS thread for small problems: on a busy 2-core machine multi-threaded BLAS
        # spin-waits made logistic regression 20x slower (9 s -> 0.5 s for 600 x 1280). Large
        # ones (full Fashion-MNIST: 60,000 x 1280) are worth every core.
        X = np.asarray(X, np.float64)
        self.arrays, self.info = {}, {}
        y = np.asarray(y, np.int64)
        if y.ndim == 2:
            if not self.multilabel:
                raise ValueError(f"head {self.name!r} does not fit label sets: use logistic, svm, mlp or mil")
            self.info["targets"] = LABEL_SETS
        with threadpool_limits(1 if X.size < LARGE_PROBLEM else None, user_api="blas"):
            return self._fit(X, y, int(n_classes))

    def for_row(self, layout: list[dict]) -> "Head":
        """This unfitted head told the fused row's blocks (the fusion's ``layout``) before its fit; a
        head that reads the row by blocks (:class:`~.mil.MILHead`: a bag of instances) keeps what it
        needs as a parameter, the others ignore it."""
        return self

    def _fit(self, X: np.ndarray, y: np.ndarray, n_classes: int) -> "Head":  # pragma: no cover
        raise NotImplementedError

    def fold_params(self, n_all: int, n_fold: int) -> dict:
        """Parameters of a copy of this fitted head that learns from ``n_fold`` of its ``n_all``
        images as it learned from all (the cross-conformal fold heads, :mod:`..conformal`): its
        searched choices fixed; none else here (a head whose penalty weighs a sum over the images
        says how to keep it equal per image)."""
        params = self.get_params()
        return {k: v for k, v in self.info.items() if k in params and params[k] is None}

    def logits(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover
        """(N, n_classes) scores whose softmax is the head's probabilities."""
        raise NotImplementedError

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, the softmax of :meth:`logits`."""
        return softmax(self.logits(np.asarray(X, np.float64)))

    @property
    def fits_label_sets(self) -> bool:
        """Whether this head was fitted on label sets (independent per-label scores)."""
        return self.info.get("targets") == LABEL_SETS

    def log_output(self, scores: np.ndarray) -> np.ndarray:
        """Log-probabilities of the head's scores: the log-softmax over classes, or, for a head
        fitted on label sets, each label's log-sigmoid."""
        return log_sigmoid(scores) if self.fits_label_sets else log_softmax(scores)

    def log_output_torch(self, scores):
        """:meth:`log_output` in torch (the ONNX export's log-probabilities)."""
        import torch

        if not self.fits_label_sets:
            return torch.log_softmax(scores, 1)
        # min(z, 0) - log(1 + exp(-|z|)): logsigmoid written so that its ONNX trace stays finite (the
        # exported LogSigmoid is log(sigmoid(z)), -inf below z = -745 in float64)
        return scores.clamp(max=0) - torch.log1p(torch.exp(-scores.abs()))

    def to_torch(self):  # pragma: no cover
        """A float64 ``torch.nn.Module``: (B, F) features -> (B, n_classes) logits, equal to ``logits``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ state
    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Learned arrays (for safetensors) and JSON-able facts (for config.json)."""
        return {k: np.ascontiguousarray(v) for k, v in self.arrays.items()}, dict(self.info)

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], info: dict, params: dict) -> "Head":
        """A fitted head from :meth:`state`'s arrays and info and the constructor ``params``
        (an unknown one is a TypeError)."""
        head = cls(**params)
        head.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        head.info = dict(info)
        missing = sorted(set(cls.state_arrays(head.info)) - set(head.arrays))
        if missing:
            raise ValueError(f"the {cls.name!r} head's state lacks arrays {missing}")
        return head

    def state_problems(self, n_features: int, n_classes: int) -> list[tuple[str, str]]:
        """(array, what is wrong) for learned arrays that break this head's invariants (a loaded
        folder is checked before any prediction; shapes and finiteness are checked for all heads)."""
        return []

    @classmethod
    def state_arrays(cls, info: dict) -> list[str]:
        """Names of the arrays a fitted head of this kind holds."""
        return []

    @property
    def n_classes(self) -> int:  # pragma: no cover
        """Number of classes the fitted head scores."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared pieces
    def _standardise(self, X):
        return (X - self.arrays["mean"]) / self.arrays["scale"]

    def _fit_scaler(self, X):
        # Centre each feature but scale all by one number: per-feature standard deviations from
        # a few images are noise (k=1 Fashion-MNIST: 45% with them, 55-63% with one global scale).
        mean = X.mean(0)
        overall = float(np.sqrt(np.mean((X - mean) ** 2)))
        scale = np.full(X.shape[1], overall if overall > 1e-12 else 1.0)
        self.arrays["mean"], self.arrays["scale"] = mean.astype(np.float64), scale.astype(np.float64)
        return self._standardise(X)


def class_weights(y: np.ndarray, n_classes: int, class_weight) -> dict | None:
    """scikit-learn's ``class_weight``: None, ``"balanced"`` (n / (n_classes * count)) or a dict."""
    if class_weight is None:
        return None
    if class_weight == "balanced":
        counts = np.bincount(y, minlength=n_classes).astype(float)
        return {c: len(y) / (n_classes * counts[c]) for c in range(n_classes) if counts[c]}
    return class_weight


def torch_arrays(head: Head) -> dict:
    """The head's arrays as float64 torch tensors (int64 for integer arrays)."""
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in head.arrays.items()}
