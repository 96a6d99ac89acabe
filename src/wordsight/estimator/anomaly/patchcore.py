"""PatchCore (Roth et al. 2022): a memory bank of mid-level patch features of the normal images,
coreset-subsampled by greedy k-center; an image's score is its most abnormal patch's distance to
the nearest bank patch, and the patch distances on the grid are the heatmap of where it is abnormal.

Rows are :mod:`.patches` grids flattened (``GRID * GRID * C``). The coreset is chosen among at most
``MAX_CANDIDATES`` patches (a seeded random subset) in a random projection to ``PROJECTION`` dims
(as the paper), ``coreset`` of them up to ``MAX_BANK``; the search is :func:`.neighbours.nearest`
(faiss when installed). Held-out distances for the threshold: each training patch's nearest bank
patch taken from another image (leave-one-image-out).
"""
from __future__ import annotations

import numpy as np

from .neighbours import nearest
from .patches import GRID

MAX_CANDIDATES = 100_000
MAX_BANK = 10_000
# The coreset's greedy k-center runs in a seeded Gaussian random projection (Johnson-Lindenstrauss,
# as the paper, which projects its 1,536-dim patches to 128). Our patches are 152 wide (two mid-level
# blocks of a small CNN), so 128 saved little. Measured on 300 Bag images' 100,000 candidate patches,
# 10,000 kept, one run (docs/benchmarks.md, "PatchCore: the coreset in 64 dimensions"): 64 dims took
# 16 s instead of 36 s with every patch's distance to the bank (the coreset's quality) within 0.2%;
# 32 dims was faster still but 4.5% worse at the worst patch, and the pasted-defect heatmap test
# (tests/estimator/test_patchcore.py) lost its margin.
PROJECTION = 64
LOO_NEIGHBOURS = 16  # bank neighbours searched per training patch to find one of another image


def greedy_coreset(Z: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Indices of ``size`` rows of ``Z`` chosen by greedy k-center (each next row the one farthest
    from those chosen), in a Gaussian random projection to ``PROJECTION`` dims when wider."""
    rng = np.random.default_rng(seed)
    P = np.asarray(Z, np.float32)
    if P.shape[1] > PROJECTION:
        P = P @ rng.normal(0, 1 / np.sqrt(PROJECTION), (P.shape[1], PROJECTION)).astype(np.float32)
    size = min(int(size), len(P))
    sq = (P * P).sum(1)
    chosen = np.empty(size, np.int64)
    chosen[0] = int(rng.integers(len(P)))
    dist = np.full(len(P), np.inf, np.float32)
    for i in range(1, size + 1):
        c = chosen[i - 1]
        dist = np.minimum(dist, sq - 2.0 * (P @ P[c]) + sq[c])
        if i < size:
            chosen[i] = int(np.argmax(dist))
    return chosen


class PatchCoreScorer:
    """Most abnormal patch's distance to the normal patch bank; ``patch_distances`` for heatmaps."""

    name = "patchcore"
    reads = "patches"

    def __init__(self, k: int = 1, coreset: float = 0.1, seed: int = 0, backend: str = "auto"):
        self.k, self.coreset, self.seed, self.backend = int(k), float(coreset), seed, backend

    def _patches(self, Z: np.ndarray) -> np.ndarray:
        Z = np.asarray(Z, np.float32)
        return Z.reshape(len(Z) * GRID * GRID, -1)

    def fit(self, Z: np.ndarray) -> "PatchCoreScorer":
        patches = self._patches(Z)
        owner = np.repeat(np.arange(len(Z)), GRID * GRID)
        rng = np.random.default_rng(self.seed)
        cand = np.sort(rng.choice(len(patches), min(len(patches), MAX_CANDIDATES), replace=False))
        size = max(1, min(MAX_BANK, int(np.ceil(self.coreset * len(cand)))))
        keep = cand[greedy_coreset(patches[cand], size, self.seed)]
        self.bank, self._owner, self._train = patches[keep], owner[keep], Z
        return self

    def patch_distances(self, Q: np.ndarray) -> np.ndarray:
        """(n, GRID, GRID): each patch's distance to its nearest bank patch."""
        D, _ = nearest(self.bank, self._patches(Q), 1, self.backend)
        return D[:, 0].reshape(len(Q), GRID, GRID)

    def distance(self, Q: np.ndarray) -> np.ndarray:
        return self.patch_distances(Q).reshape(len(Q), -1).max(1).astype(np.float64)

    def held_out_distance(self) -> np.ndarray:
        out = np.empty(len(self._train))
        step = 64  # images per search: memory is step x GRID^2 x LOO_NEIGHBOURS
        for lo in range(0, len(self._train), step):
            part = self._train[lo:lo + step]
            D, idx = nearest(self.bank, self._patches(part), LOO_NEIGHBOURS, self.backend)
            me = np.repeat(np.arange(lo, lo + len(part)), GRID * GRID)
            other = self._owner[idx] != me[:, None]
            d = D[np.arange(len(D)), other.argmax(1)]  # the nearest bank patch of another image
            for r in np.flatnonzero(~other.any(1)):  # all LOO_NEIGHBOURS from its own image: search the others
                d[r] = nearest(self.bank[self._owner != me[r]], self._patches(part)[r:r + 1], 1, self.backend)[0][0, 0]
            out[lo:lo + len(part)] = d.reshape(len(part), -1).max(1)
        return out

    def state(self) -> dict:
        return {"bank": self.bank}

    def set_state(self, arrays: dict) -> "PatchCoreScorer":
        self.bank = np.ascontiguousarray(arrays["bank"], np.float32)
        return self

    @staticmethod
    def shapes(config: dict) -> dict:
        """The saved arrays' shapes from the detector's config."""
        return {"bank": (config["bank_size"], config["n_features"] // (GRID * GRID))}
