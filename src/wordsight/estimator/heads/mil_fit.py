"""The multiple-instance head's fit (:mod:`.mil`): full-batch L-BFGS in torch, and the penalty
``lam`` chosen by cross-validated mean average precision.

Why not scikit-learn: its linear models take one row per image and a fixed loss; here each label's
score of an image is pooled over the image's instances (log-sum-exp or max) before the loss, which
none of its estimators offers. The problem is small and smooth (log-sum-exp) or piecewise smooth
(max), so full-batch L-BFGS (torch's, strong-Wolfe line search) converges in a few hundred
steps; the optimum is unique for log-sum-exp (convex), a local one for max.
"""
from __future__ import annotations

import numpy as np

LAM_GRID = (1e-5, 1e-4, 1e-3)  # measured best 1e-5..1e-4 at 600-1,000 mosaics (docs/benchmarks.md)
LAM_EXTEND = 2  # decades tried below the grid while its smallest wins (10,000 mosaics chose 1e-5, its edge)
CV_FOLDS = 3


def pooled_scores(T, W, pool: str):
    """(N, L) per-label scores pooled over the instances: ``T`` (N, k, d) instances, ``W`` (L, d)."""
    import torch

    s = T @ W.T  # (N, k, L)
    return torch.logsumexp(s, 1) if pool == "lse" else s.amax(1)


def fit_weights(T, G, Y, n_labels: int, lam: float, pool: str, max_iter: int, start=None) -> dict[str, np.ndarray]:
    """``W`` (L, d), ``V`` (L, g), ``b`` (L,) minimising the mean loss over images plus
    ``lam * (|W|^2 + |V|^2)``; the loss is each label's binary cross-entropy summed over labels for
    an (N, L) 0/1 ``Y``, the softmax cross-entropy for class indices (N,). ``T`` (N, k, d) or None
    (no instances: a linear model on ``G``); ``start``: weights to start from (warm start)."""
    import torch

    G_t = torch.from_numpy(np.ascontiguousarray(G, np.float32))
    T_t = None if T is None else torch.from_numpy(np.ascontiguousarray(T, np.float32))
    sets = np.asarray(Y).ndim == 2
    shapes = {"W": (n_labels, 0 if T is None else T.shape[2]), "V": (n_labels, G.shape[1]), "b": (n_labels,)}
    p = {k: torch.tensor(np.asarray(start[k], np.float32)) if start else torch.zeros(s) for k, s in shapes.items()}
    for v in p.values():
        v.requires_grad_(True)
    target = torch.from_numpy(np.asarray(Y, np.float32 if sets else np.int64))
    opt = torch.optim.LBFGS(list(p.values()), max_iter=int(max_iter), line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = G_t @ p["V"].T + p["b"]
        if T_t is not None:
            z = z + pooled_scores(T_t, p["W"], pool)
        if sets:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, target, reduction="sum") / len(target)
        else:
            loss = torch.nn.functional.cross_entropy(z, target)
        loss = loss + lam * ((p["W"] ** 2).sum() + (p["V"] ** 2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    return {k: v.detach().numpy().astype(np.float64) for k, v in p.items()}


def mean_ap(Y, scores) -> list[float]:
    """Average precision of each label (column) with a positive and a negative in ``Y``."""
    from sklearn.metrics import average_precision_score

    return [float(average_precision_score(Y[:, j], scores[:, j])) for j in range(Y.shape[1])
            if 0 < Y[:, j].sum() < len(Y)]


def choose_lam(T, G, Y, n_labels, grid, pool, max_iter, score, random_state=0, extend: int = 0) -> tuple[float, dict]:
    """The ``lam`` of ``grid`` with the best mean average precision over :data:`CV_FOLDS` shuffled
    folds (``score(weights, rows)``: the held-out rows' (n, L) scores); in each fold the grid is
    fitted from the largest ``lam`` down, each fit starting from the last (warm start). While the
    smallest ``lam`` tried is the best, up to ``extend`` more are tried, a tenth of it each (the
    optimum lay below the grid: 10,000 mosaics chose its edge). Ties: the larger ``lam``."""
    from sklearn.model_selection import KFold

    grid = sorted(float(v) for v in grid)
    if len(grid) == 1 or len(Y) < 2 * CV_FOLDS:
        return grid[len(grid) // 2], {}
    Y = np.asarray(Y)
    onehot = Y if Y.ndim == 2 else np.eye(n_labels, dtype=np.int64)[Y]
    seed = random_state if isinstance(random_state, int) else 0
    folds = list(KFold(CV_FOLDS, shuffle=True, random_state=seed).split(G))
    last = [None] * len(folds)  # each fold's latest weights: the next (smaller) lam starts there
    scores: dict[float, float] = {}

    def evaluate(lam: float) -> None:
        aps = []
        for f, (tr, va) in enumerate(folds):
            last[f] = fit_weights(None if T is None else T[tr], G[tr], Y[tr], n_labels, lam, pool, max_iter, last[f])
            aps += mean_ap(onehot[va], score(last[f], va))
        scores[lam] = float(np.mean(aps)) if aps else 0.0

    def best() -> float:
        return max(scores, key=lambda lam: (round(scores[lam], 6), lam))

    for lam in reversed(grid):
        evaluate(lam)
    for _ in range(extend):
        if best() != min(scores):
            break
        evaluate(float(f"{min(scores) / 10:.6g}"))
    return best(), {f"{k:g}": v for k, v in sorted(scores.items())}
