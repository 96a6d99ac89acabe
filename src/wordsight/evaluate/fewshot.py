"""Few-shot protocol: k labelled images per class, several random draws, the test set untouched.

Each draw picks k training images per class from a labelled pool with its own seed; every choice
a method makes (its penalty, the prior's weight and temperature) is made inside ``fit`` from those
k-shot images alone; the test images are only predicted, once per fitted model. (Tuning on the
test set is the bug this protocol exists to avoid: CLIP_benchmark#125.)
"""
from __future__ import annotations

import time

import numpy as np
from sklearn.base import clone

from ..estimator.feature_blocks import FeatureBlocks


def draw_k_shot(labels, k: int, seed: int) -> np.ndarray:
    """Indices of ``k`` images per class (all of a class's images if it has fewer), seeded."""
    labels = np.asarray(labels, dtype=object)
    rng = np.random.default_rng(seed)
    picks = []
    for c in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == c)
        picks.append(rng.permutation(idx)[:k])
    return np.sort(np.concatenate(picks))


def few_shot_curve(methods: dict, pool: FeatureBlocks, test: FeatureBlocks, ks=(1, 2, 4, 8, 16),
                   draws: int = 5, seed: int = 0, log=None) -> dict:
    """Test accuracy of each method (name -> unfitted Classifier) at each k, over ``draws`` draws.

    Returns ``{"ks", "draws", "methods": {name: {k: {"mean", "std", "runs", "prior_weights"}}}}``.
    """
    y_test = np.asarray(test.labels, dtype=object)
    out = {"ks": list(ks), "draws": draws, "seed": seed, "n_test": len(test), "methods": {}}
    for name, proto in methods.items():
        res = {}
        for k in ks:
            accs, weights = [], []
            for d in range(draws):
                idx = draw_k_shot(pool.labels, k, seed + 1000 * d + k)
                t = time.time()
                clf = clone(proto).fit(pool.take(idx))
                acc = float(np.mean(clf.predict(test) == y_test))
                accs.append(acc)
                weights.append(clf.prior_mix_.weight if clf.prior_mix_ is not None else 0.0)
                if log:
                    log(f"{name} k={k} draw={d}: {acc:.4f} (prior weight {weights[-1]}, {time.time() - t:.1f}s)")
            res[str(k)] = {"mean": float(np.mean(accs)), "std": float(np.std(accs)), "runs": accs,
                           "prior_weights": weights}
        out["methods"][name] = res
    return out
