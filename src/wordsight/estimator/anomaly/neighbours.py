"""Exact Euclidean nearest neighbours of query rows in a bank, in batches of queries so that
memory is bounded by ``batch x len(bank)``: faiss (``IndexFlatL2``, the field's library for this
search) when it is installed, numpy otherwise; both return the same neighbours (tested)."""
from __future__ import annotations

import numpy as np

QUERY_BATCH = 4096  # query rows per search block


def has_faiss() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def nearest(bank: np.ndarray, queries: np.ndarray, k: int = 1, backend: str = "auto",
            batch: int = QUERY_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """(distances (n, k) ascending, Euclidean; indices (n, k) into ``bank``) of every query row.
    ``backend``: ``faiss``, ``numpy`` or ``auto`` (faiss when installed)."""
    if backend == "auto":
        backend = "faiss" if has_faiss() else "numpy"
    if backend not in ("faiss", "numpy"):
        raise ValueError(f"backend must be auto, faiss or numpy, not {backend!r}")
    bank = np.ascontiguousarray(bank, np.float32)
    queries = np.ascontiguousarray(queries, np.float32)
    k = min(int(k), len(bank))
    D, idx = np.empty((len(queries), k), np.float32), np.empty((len(queries), k), np.int64)
    search = _faiss_search(bank) if backend == "faiss" else _numpy_search(bank)
    for lo in range(0, len(queries), batch):
        D[lo:lo + batch], idx[lo:lo + batch] = search(queries[lo:lo + batch], k)
    return np.sqrt(np.maximum(D, 0.0)), idx


def _faiss_search(bank: np.ndarray):
    import faiss

    index = faiss.IndexFlatL2(bank.shape[1])
    index.add(bank)
    return index.search


def _numpy_search(bank: np.ndarray):
    """Squared distances ``|q|^2 - 2 q.b + |b|^2`` (what IndexFlatL2 computes), the k smallest sorted."""
    b2 = (bank.astype(np.float64) ** 2).sum(1)

    def search(Q: np.ndarray, k: int):
        D = (Q.astype(np.float64) ** 2).sum(1)[:, None] - 2.0 * (Q @ bank.T).astype(np.float64) + b2[None]
        idx = np.argpartition(D, k - 1, axis=1)[:, :k] if k < D.shape[1] else np.tile(np.arange(D.shape[1]), (len(D), 1))
        d = np.take_along_axis(D, idx, 1)
        order = np.argsort(d, axis=1, kind="stable")
        return np.take_along_axis(d, order, 1).astype(np.float32), np.take_along_axis(idx, order, 1)

    return search
