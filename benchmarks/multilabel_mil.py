"""Multiple-instance tagging on tiles (issue 24, a prototype measured here, not a head yet): each
tile of a 2x2 and a 3x3 split embedded on its own (EfficientNet-Lite0, tiles read as tiny images
are), per-label logistic scores per tile pooled over the tiles by log-sum-exp, plus a linear term
on the global embedding, trained on image-level labels (binary cross-entropy, L2; full-batch
L-BFGS in torch). Against: one-vs-rest logistic regression (the logistic head) on the global
embedding and on [global, max over tiles, mean over tiles] of the same tile embeddings.

    PYTHONPATH=src python benchmarks/multilabel_mil.py --train 600 --test 300 [--scales]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from multilabel_mosaics import scores, source  # noqa: E402
from wordsight._util.numerics import l2_normalize  # noqa: E402
from wordsight.estimator.heads import LogisticHead  # noqa: E402
from wordsight.estimator.tasks import MultiLabelTask  # noqa: E402
from wordsight.features import extract_features, extract_views  # noqa: E402
from wordsight.features.views import tile_view  # noqa: E402
from wordsight.io.datasets import FASHION_MNIST_CLASSES  # noqa: E402

ENC = "efficientnet-lite0"


def tiles(src, grids) -> np.ndarray:
    """(N, tiles, D) L2-normalised tile embeddings, tiles of every grid in order (each image read
    and decoded once for all its tiles: extract_views)."""
    sets = extract_views(src, ENC, [tile_view(None, g, i) for g in grids for i in range(g * g)], quiet=True)
    assert all(fs.paths == src.paths for fs in sets)
    return np.stack([l2_normalize(fs.embeddings) for fs in sets], 1)


def fit_mil(T, G, Y, lam, pool="lse"):
    """Per-label tile scores T @ W.T + b pooled over tiles (+ G @ V.T), BCE + lam * |W, V|^2."""
    import torch

    torch.manual_seed(0)
    T, G, Y = (torch.from_numpy(np.asarray(a, np.float32)) for a in (T, G, Y))
    L, D = Y.shape[1], T.shape[2]
    W = torch.zeros(L, D, requires_grad=True)
    V = torch.zeros(L, G.shape[1], requires_grad=True)
    b = torch.zeros(L, requires_grad=True)
    opt = torch.optim.LBFGS([W, V, b], max_iter=300, line_search_fn="strong_wolfe")

    def logits(T, G):
        s = T @ W.T  # (N, tiles, L)
        pooled = torch.logsumexp(s, 1) if pool == "lse" else s.amax(1)
        return pooled + G @ V.T + b

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits(T, G), Y, reduction="sum") / len(Y)
        loss = loss + lam * ((W * W).sum() + (V * V).sum())
        loss.backward()
        return loss

    opt.step(closure)
    return lambda T2, G2: logits(*(torch.from_numpy(np.asarray(a, np.float32)) for a in (T2, G2))).detach().numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=600)
    ap.add_argument("--test", type=int, default=300)
    ap.add_argument("--scales", action="store_true")
    ap.add_argument("--grids", default="2,3")
    ap.add_argument("--lams", default="1e-4,1e-3,1e-2")
    args = ap.parse_args()
    grids = [int(g) for g in args.grids.split(",")]
    train, test = source("train", args.train, 0, args.scales), source("test", args.test, 1, args.scales)
    classes = np.array(sorted(FASHION_MNIST_CLASSES))
    task = MultiLabelTask(np.full(len(classes), 0.5))
    Ytr, Yte = task.targets(train.labels, classes), task.targets(test.labels, classes)
    t = time.time()
    Gtr, Gte = (l2_normalize(extract_features(s, ENC, quiet=True).embeddings) for s in (train, test))
    Ttr, Tte = tiles(train, grids), tiles(test, grids)
    print(json.dumps({"features_s": round(time.time() - t, 1), "tiles": Ttr.shape[1]}), flush=True)
    rows = []

    def report(name, P):
        rows.append({"model": name, **scores(task, Yte, P, classes)})
        print(json.dumps(rows[-1]), flush=True)

    for name, (A, B) in {"global + OvR logistic": (Gtr, Gte),
                         "global + max/mean over tiles + OvR logistic": (
                             np.concatenate([Gtr, Ttr.max(1), Ttr.mean(1)], 1),
                             np.concatenate([Gte, Tte.max(1), Tte.mean(1)], 1))}.items():
        head = LogisticHead().fit(A, Ytr, len(classes))
        report(name, 1 / (1 + np.exp(-head.logits(B))))
    for lam in (float(v) for v in args.lams.split(",")):
        for pool in ("lse", "max"):
            f = fit_mil(Ttr, Gtr, Ytr, lam, pool)
            report(f"MIL {pool} over {Ttr.shape[1]} tiles + global, lam {lam:g}", 1 / (1 + np.exp(-f(Tte, Gte))))
    print(f"\n| model | mAP | micro-F1 | macro-F1 |  ({args.train} training / {args.test} test mosaics"
          f"{', several scales' if args.scales else ''}; F1 at 0.5)")
    for r in rows:
        print(f"| {r['model']} | {r['mAP']:.4f} | {r['micro_f1']:.4f} | {r['macro_f1']:.4f} |")


if __name__ == "__main__":
    main()
