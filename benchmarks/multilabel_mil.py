"""Multiple instances over tiles (issue 24): the ``mil`` head on the global embedding and a tile bag
(``tilebag:2,3:efficientnet-lite0``: each of the 13 tiles of a 2x2 and a 3x3 split read as its own
image, cached per tile view), lam chosen by 3-fold cross-validated mAP on the training mosaics
(or each of ``--lams`` given); against one-vs-rest logistic regression (the logistic head) on the
global embedding and on [global, max over tiles, mean over tiles] of the same tile embeddings.
mAP on the test mosaics, F1 at 0.5: the rows are heads fitted on the Classifier's own fused rows,
without its thresholds (``multilabel_mosaics.py --models mil13`` runs the whole Classifier).

    PYTHONPATH=src python benchmarks/multilabel_mil.py --train 1000 --test 500 [--scales] [--lams 1e-5,1e-4]

``--hidden 512,1024 --epochs 20,30``: the mil head with a hidden layer in its instance scorer
(``MILHead(hidden=H)``); H and the epochs chosen by mAP on a held-out 20% of the TRAINING mosaics
(fitted on the other 80%), then the choice refitted on all training mosaics and scored on the
test mosaics once. ``--hidden 1024`` alone (one H, one epoch count): no held-out choice.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from multilabel_mosaics import print_table, scores, source  # noqa: E402
from wordsight._util.numerics import sigmoid  # noqa: E402
from wordsight.estimator.feature_blocks import extract_blocks  # noqa: E402
from wordsight.estimator.fusion import make_fusion  # noqa: E402
from wordsight.estimator.heads import LogisticHead, MILHead, mil_mlp  # noqa: E402
from wordsight.estimator.heads.mil_fit import mean_ap  # noqa: E402
from wordsight.estimator.tasks import MultiLabelTask  # noqa: E402
from wordsight.io.datasets import FASHION_MNIST_CLASSES  # noqa: E402

ENC = "efficientnet-lite0"


def rows_of(src, encoders):
    """The fused rows the Classifier's image fusion makes of ``src`` (each tile L2-normalised) and
    their layout (where the bag lies)."""
    blocks = extract_blocks(src, encoders, quiet=True)
    assert [s.path for s in blocks.samples] == src.paths
    fusion = make_fusion("image").bind(encoders)
    dims = {e: v.shape[1] for e, v in blocks.embeddings.items()}
    return fusion.fuse(blocks.embeddings, None, len(blocks)), fusion.layout(dims, None)


def pooled_features(M, bag):
    """[global, max over tiles, mean over tiles] of fused rows with the bag ``[start, tiles, width]``."""
    start, k, d = bag
    T = M[:, start:start + k * d].reshape(len(M), k, d)
    return np.concatenate([M[:, :start], T.max(1), T.mean(1)], 1)


def held_out_choice(M, Y, layout, widths, epochs, n_labels):
    """(H, epochs) with the best mAP on a seeded 20% of the training rows, the mil head with a
    hidden layer fitted on the other 80% (each epoch count read off one fit, after that epoch), and
    the table of held-out mAPs."""
    rng = np.random.default_rng(0)
    order = rng.permutation(len(M))
    va, tr = order[: len(M) // 5], order[len(M) // 5:]
    start, k, d = MILHead().for_row(layout).bag

    def split(rows):
        X = M[rows]
        return (np.ascontiguousarray(X[:, start:start + k * d].reshape(len(X), k, d), np.float32),
                np.ascontiguousarray(np.concatenate([X[:, :start], X[:, start + k * d:]], 1), np.float32))

    (Ttr, Gtr), (Tva, Gva) = split(tr), split(va)
    table = {}
    for h in widths:
        t = time.time()

        def seen(epoch, w, h=h):
            if epoch in epochs:
                table[(h, epoch)] = float(np.mean(mean_ap(Y[va], mil_mlp.numpy_scores(Tva, Gva, w, "lse"))))
                print(json.dumps({"held_out": {"hidden": h, "epochs": epoch, "mAP": round(table[(h, epoch)], 4),
                                               "seconds": round(time.time() - t, 1)}}), flush=True)

        mil_mlp.fit_mlp_scorer(Ttr, Gtr, Y[tr], n_labels, h, "lse", 0, max(epochs), on_epoch=seen)
    return max(table, key=table.get), table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--scales", action="store_true")
    ap.add_argument("--grids", default="2,3")
    ap.add_argument("--pools", default="lse", help="lse, max or both (lse,max)")
    ap.add_argument("--lams", default="cv", help="'cv' (3-fold cross-validated mAP over 1e-5..1e-3), fixed values, "
                    "or 'none' (no linear mil head)")
    ap.add_argument("--max-iter", type=int, default=300, help="L-BFGS iterations of each fit (the head's max_iter)")
    ap.add_argument("--baselines", default="global,pooled", help="logistic rows: global, pooled, or none")
    ap.add_argument("--hidden", default="", help="hidden widths of the mil head's instance scorer (e.g. 512,1024)")
    ap.add_argument("--epochs", default="", help="epoch counts to choose among on the held-out split (e.g. 20,30)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    bag = f"tilebag:{args.grids}:{ENC}"
    train, test = source("train", args.train, 0, args.scales), source("test", args.test, 1, args.scales)
    classes = np.array(sorted(FASHION_MNIST_CLASSES))
    task = MultiLabelTask(np.full(len(classes), 0.5))
    Ytr, Yte = task.targets(train.labels, classes), task.targets(test.labels, classes)
    t = time.time()
    (Mtr, layout), (Mte, _) = rows_of(train, [ENC, bag]), rows_of(test, [ENC, bag])
    where = MILHead().for_row(layout).bag
    print(json.dumps({"features_s": round(time.time() - t, 1), "rows": list(Mtr.shape), "bag": where}), flush=True)
    rows = []

    def report(name, fit):
        t = time.time()
        head = fit()
        rows.append({"model": name, **scores(task, Yte, sigmoid(head.logits(Xte)), classes),
                     "seconds": round(time.time() - t, 1), **{k: head.info[k] for k in ("C", "lam") if k in head.info},
                     **({"cv_mean_ap": head.info["cv_mean_ap"]} if head.info.get("cv_mean_ap") else {})})
        print(json.dumps(rows[-1]), flush=True)

    baselines = {"global": ("global + OvR logistic", lambda M: M[:, :where[0]]),
                 "pooled": (f"global + max/mean over the {where[1]} tiles + OvR logistic",
                            lambda M: pooled_features(M, where))}
    for key in (b for b in args.baselines.split(",") if b in baselines):
        name, part = baselines[key]
        Xte = part(Mte)
        report(name, lambda part=part: LogisticHead().fit(part(Mtr), Ytr, len(classes)))
    Xte = Mte
    lams = [None] if args.lams == "cv" else [] if args.lams == "none" else [float(v) for v in args.lams.split(",")]
    for lam in lams:
        for pool in args.pools.split(","):
            report(f"mil head, {pool} over {where[1]} tiles + global, lam " + ("by CV" if lam is None else f"{lam:g}"),
                   lambda lam=lam, pool=pool: MILHead(pool=pool, lam=lam, max_iter=args.max_iter).for_row(layout)
                   .fit(Mtr, Ytr, len(classes)))
    widths, epochs = [int(v) for v in args.hidden.split(",") if v], [int(v) for v in args.epochs.split(",") if v]
    if widths:
        chosen = (widths[0], epochs[0] if epochs else mil_mlp.EPOCHS)
        if len(widths) > 1 or len(epochs) > 1:
            chosen, table = held_out_choice(Mtr, Ytr, layout, widths, epochs or [mil_mlp.EPOCHS], len(classes))
            print(json.dumps({"held_out_choice": {"hidden": chosen[0], "epochs": chosen[1]},
                              "table": {f"{h}x{e}": round(v, 4) for (h, e), v in table.items()}}), flush=True)
        mil_mlp.EPOCHS = chosen[1]  # the head reads it at its fit (its default is the measured choice)
        report(f"mil head, hidden {chosen[0]} ({chosen[1]} epochs), lse over {where[1]} tiles + global",
               lambda: MILHead(hidden=chosen[0]).for_row(layout).fit(Mtr, Ytr, len(classes)))
    print_table(rows, f"{args.train} training / {args.test} test mosaics{', several scales' if args.scales else ''}; "
                      "F1 at 0.5")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
