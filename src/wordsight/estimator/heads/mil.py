"""A multiple-instance head (issue 24): each label scored on every instance of a bag (the tiles of
a tile bag, ``tilebag:2,3:<encoder>``), the scores pooled over the instances, plus a linear term on
the rest of the row (the global embedding, so that an object larger than a tile still counts)::

    logits[n, l] = pool_i (T[n, i] . W[l]) + G[n] . V[l] + b[l]

``T[n, i]`` the L2-normalised tile embeddings (the bag's block of the fused row), ``G[n]`` every
other column, ``pool`` log-sum-exp (default) or max. Label sets: each label's sigmoid
(binary cross-entropy); one label per image: the softmax over the pooled scores (cross-entropy).
Trained on image-level labels only, with ``lam * (|W|^2 + |V|^2)``, ``lam`` chosen by 3-fold
cross-validated mean average precision among 1e-5, 1e-4, 1e-3, and a decade or two below
while the smallest wins (:mod:`.mil_fit`).

``hidden=H > 0``: each instance scored by one ReLU layer of width ``H`` shared over the instances
instead of ``T . W`` (:mod:`.mil_mlp`: ``pool_i (relu(T[n, i] . W1.T + c1) . W2[l])``), trained by
AdamW for a fixed number of epochs with a fixed weight decay (no ``lam`` search).

Where the bag lies in the row comes from the fusion's layout (:meth:`for_row`, a block with
``instances``), or from ``bag = [start, instances, width]``. A row without a bag is the global
term alone: a logistic regression fitted the same way.
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .base import Head
from .mil_fit import LAM_EXTEND, LAM_GRID, choose_lam, fit_weights
from .mil_mlp import fit_mlp_scorer, numpy_scores

POOLS = ("lse", "max")


class MILHead(Head):
    """Per-instance label scores pooled over a bag, plus a linear global term (module doc).
    ``pool``: "lse" or "max"; ``lam``: the penalty (None: cross-validated over ``LAM_GRID``, a
    decade or two below it while its smallest wins; a sequence: that grid); ``bag``: where the
    instances lie (None: from the fusion's layout); ``max_iter``: L-BFGS iterations; ``hidden``: 0 the
    linear instance scorer, H > 0 a ReLU layer of width H (:mod:`.mil_mlp`, ``HIDDEN`` = 1024 measured)."""

    name = "mil"
    multilabel = True
    _parameter_constraints = {"pool": [StrOptions(set(POOLS))],
                              "lam": [Interval(Real, 0, None, closed="left"), tuple, list, None],
                              "bag": [tuple, list, None], "max_iter": [Interval(Integral, 1, None, closed="left")],
                              "random_state": ["random_state"], "hidden": [Interval(Integral, 0, None, closed="left")]}

    def __init__(self, pool="lse", lam=None, bag=None, max_iter=300, random_state=0, hidden=0):
        self.pool = pool
        self.lam = lam
        self.bag = bag
        self.max_iter = max_iter
        self.random_state = random_state
        self.hidden = hidden

    # ------------------------------------------------------------------ the row's layout
    def for_row(self, layout: list[dict]) -> "MILHead":
        """This head with ``bag`` taken from the fused row's ``layout`` (the fusion's blocks; the one
        with ``instances``) unless given; refused when the row holds several bags."""
        bags = [b for b in layout if b.get("instances", 1) > 1]
        if self.bag is None and len(bags) > 1:
            raise ValueError(f"the mil head pools one bag of instances, the row holds {len(bags)}: "
                             f"{', '.join(b['name'] for b in bags)}")
        if self.bag is None and bags:
            k = int(bags[0]["instances"])
            self.set_params(bag=[int(bags[0]["start"]), k, (int(bags[0]["stop"]) - int(bags[0]["start"])) // k])
        return self

    def _bag(self, n_features: int) -> list[int] | None:
        bag = self.info.get("bag") if hasattr(self, "info") and "bag" in self.info else self.bag
        if bag is None:
            return None
        start, k, d = (int(v) for v in bag)
        if start < 0 or k < 1 or d < 1 or start + k * d > n_features:
            raise ValueError(f"the mil head's bag {[start, k, d]} ([start, instances, width]) does not fit rows of "
                             f"{n_features} features")
        return [start, k, d]

    def fold_params(self, n_all: int, n_fold: int) -> dict:
        """The chosen ``lam`` and the bag, fixed: the loss is a mean over images, so the same
        ``lam`` weighs the penalty alike per image on a fold (no scaling, unlike a linear head's C)."""
        if self.info.get("hidden"):
            return {"bag": self.info["bag"]}
        return {"lam": float(self.info["lam"]), "bag": self.info["bag"]}

    def _split(self, X: np.ndarray, bag):
        """(T (N, k, d) or None, G (N, g)): the bag's instances and the other columns."""
        if bag is None:
            return None, X
        start, k, d = bag
        stop = start + k * d
        return X[:, start:stop].reshape(len(X), k, d), np.concatenate([X[:, :start], X[:, stop:]], 1)

    # ------------------------------------------------------------------ fit and scores
    def _fit(self, X, y, n_classes):
        bag = self._bag(X.shape[1])
        T, G = self._split(X, bag)
        # float32 once (torch fits in float32): 10,000 images x 13 tiles x 1280 is 0.67 GB, not 1.3
        T, G = (None if T is None else np.ascontiguousarray(T, np.float32)), np.ascontiguousarray(G, np.float32)
        if int(self.hidden) > 0:
            return self._fit_hidden(T, G, y, n_classes, bag)
        grid = tuple(self.lam) if isinstance(self.lam, (list, tuple)) else (
            (float(self.lam),) if self.lam is not None else LAM_GRID)

        def score(w, rows):
            return self._scores(T[rows] if T is not None else None, G[rows], w)

        lam, cv = choose_lam(T, G, y, n_classes, grid, self.pool, self.max_iter, score, self.random_state,
                             extend=LAM_EXTEND if self.lam is None else 0)
        self.arrays.update(fit_weights(T, G, y, n_classes, lam, self.pool, self.max_iter))
        if T is None:
            del self.arrays["W"]
        self.info.update(lam=lam, cv_mean_ap=cv, bag=bag, pool=self.pool,
                         lam_search="3-fold cross-validated mean average precision" if cv else "given or too few images")
        return self

    def _fit_hidden(self, T, G, y, n_classes, bag):
        if T is None:
            raise ValueError("the mil head's hidden layer scores instances: the row holds no bag of instances")
        seed = self.random_state if isinstance(self.random_state, Integral) else 0
        arrays, loss = fit_mlp_scorer(T, G, y, n_classes, int(self.hidden), self.pool, int(seed))
        self.arrays.update(arrays)
        self.info.update(hidden=int(self.hidden), bag=bag, pool=self.pool, train_loss=loss,
                         lam_search="none (hidden layer: fixed epochs and weight decay)")
        return self

    def _scores(self, T, G, w) -> np.ndarray:
        if self.info.get("hidden"):
            return numpy_scores(T, G, w, self.info.get("pool", self.pool))
        from scipy.special import logsumexp

        z = G @ w["V"].T + w["b"]
        if T is not None:
            s = T @ w["W"].T  # (N, k, L), through BLAS
            z = z + (logsumexp(s, axis=1) if self.info.get("pool", self.pool) == "lse" else s.max(1))
        return z

    def logits(self, X):
        """(N, L) pooled instance scores plus the global term (the module doc's formula)."""
        X = np.asarray(X, np.float64)
        bag = self._bag(X.shape[1])
        width = self.arrays["V"].shape[1] + (bag[1] * bag[2] if bag else 0)
        if X.shape[1] != width:
            raise ValueError(f"rows of {X.shape[1]} features, but this mil head reads {width}"
                             + (f" (a bag of {bag[1]} instances of {bag[2]} at column {bag[0]})" if bag else ""))
        T, G = self._split(X, bag)
        return self._scores(T, G, self.arrays)

    def instance_terms(self, X) -> dict[str, np.ndarray] | None:
        """The parts of :meth:`logits` per row (explanations: where a label's evidence lies):
        ``scores`` (N, k, L) each instance's score for each label, ``weights`` (N, k, L) its share of
        the pooling (log-sum-exp: the softmax over instances, the derivative of the pooled score;
        max: 1 at the first best instance), ``pooled`` (N, L), ``global`` (N, L) the linear term on
        the other columns and ``bias`` (L,): ``pooled + global + bias`` is :meth:`logits`. None
        without a bag. The hidden scorer's output bias, folded into ``b``, is in ``bias``."""
        from scipy.special import logsumexp, softmax

        X = np.asarray(X, np.float64)
        self.logits(X[:0])  # the width checked as logits checks it
        bag = self._bag(X.shape[1])
        if bag is None:
            return None
        T, G = self._split(X, bag)
        w = self.arrays
        s = np.maximum(T @ w["W1"].T + w["c1"], 0) @ w["W2"].T if self.info.get("hidden") else T @ w["W"].T
        if self.info.get("pool", self.pool) == "lse":
            pooled, weights = logsumexp(s, axis=1), softmax(s, axis=1)
        else:
            pooled = s.max(1)
            weights = (np.arange(s.shape[1])[None, :, None] == s.argmax(1)[:, None, :]).astype(np.float64)
        return {"scores": s, "weights": weights, "pooled": pooled, "global": G @ w["V"].T,
                "bias": np.asarray(w["b"], np.float64)}

    @property
    def n_classes(self) -> int:
        """Number of labels (classes) scored."""
        return int(self.arrays["b"].shape[0])

    def to_torch(self):
        """The same scores as a float64 torch module (slices, a matmul, logsumexp or amax; the bag's
        place fixed at construction, no control flow on tensor values: it traces to ONNX)."""
        import torch

        bag, lse = self.info.get("bag"), self.info.get("pool", self.pool) == "lse"
        hidden = bool(self.info.get("hidden"))
        arrays = {k: torch.from_numpy(np.ascontiguousarray(v, np.float64)) for k, v in self.arrays.items()}

        class MIL(torch.nn.Module):
            def __init__(self):
                super().__init__()
                for k, v in arrays.items():
                    self.register_buffer(k, v)

            def forward(self, X):
                if bag is None:
                    return X @ self.V.T + self.b
                start, k, d = bag
                z = torch.cat([X[:, :start], X[:, start + k * d:]], 1) @ self.V.T + self.b
                T = X[:, start:start + k * d].reshape(-1, k, d)
                s = (T @ self.W1.T + self.c1).clamp_min(0) @ self.W2.T if hidden else T @ self.W.T
                return z + (torch.logsumexp(s, 1) if lse else s.amax(1))

        return MIL()

    # ------------------------------------------------------------------ state
    @classmethod
    def state_arrays(cls, info):
        """``V``, ``b`` and, with a bag, ``W`` (linear scorer) or ``W1``, ``c1``, ``W2`` (hidden layer)."""
        if not info.get("bag"):
            return ["V", "b"]
        return ["V", "b"] + (["W1", "c1", "W2"] if info.get("hidden") else ["W"])

    def state_problems(self, n_features: int, n_classes: int) -> list[tuple[str, str]]:
        """The bag inside the row, ``W`` one row of the instance width per label, ``V`` the rest."""
        try:
            bag = self._bag(n_features)
        except (TypeError, ValueError) as e:
            return [("bag", str(e))]
        out = []
        if self.info.get("pool") not in POOLS:
            out.append(("pool", f"must be one of {', '.join(POOLS)}, not {self.info.get('pool')!r}"))
        g = n_features - (bag[1] * bag[2] if bag else 0)
        if self.arrays["V"].shape != (n_classes, g):
            out.append(("V", f"must be ({n_classes}, {g}), not {self.arrays['V'].shape}"))
        if bag and self.info.get("hidden"):
            out += self._hidden_problems(n_classes, bag)
        elif bag and self.arrays["W"].shape != (n_classes, bag[2]):
            out.append(("W", f"must be ({n_classes}, {bag[2]}) for a bag of {bag[1]} x {bag[2]}, not "
                             f"{self.arrays['W'].shape}"))
        if self.arrays["b"].shape != (n_classes,):
            out.append(("b", f"must be ({n_classes},), not {self.arrays['b'].shape}"))
        return out


    def _hidden_problems(self, n_classes: int, bag) -> list[tuple[str, str]]:
        """``W1`` (H, d), ``c1`` (H,), ``W2`` (L, H) for the saved ``hidden`` H."""
        h = self.info.get("hidden")
        if not isinstance(h, int) or isinstance(h, bool) or h < 1:
            return [("hidden", f"must be a positive whole number, not {h!r}")]
        want = {"W1": (h, bag[2]), "c1": (h,), "W2": (n_classes, h)}
        return [(k, f"must be {want[k]} for a hidden layer of {h} over instances of {bag[2]}, not "
                    f"{self.arrays[k].shape}") for k in want if self.arrays[k].shape != want[k]]
