"""Dump the arrays of ``benchmarks/fewshot_curves.py``'s tasks so that a few-shot rule (how the
prior is centred, how much it weighs) can be scored with numpy in seconds (issue 26).

    OMP_NUM_THREADS=1 nice python benchmarks/fewshot_dump.py --tasks fm-easy,fashion-mnist --seeds 0 --out /tmp/dump

Per task and seed one ``.npz``: the fused image features of the pool and the test images (``Xp``,
``Xt``), their class indices (``yp``, ``yt``), and per way of the zero-shot prior (ConSE, linear)
the images' raw text-space vectors (``Vp_<way>``, ``Vt_<way>``), the class text vectors
(``E_<way>``) and the scale, so that the prior's log-probabilities can be recomputed under any
centring (:func:`prior_log_proba`). The draws are ``fewshot_curves``'s (``draw_k_shot`` with seed
``seed + 1000 * draw + k``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from fewshot_curves import BASE, TASKS, say  # noqa: E402
from wordsight._util.numerics import log_softmax  # noqa: E402
from wordsight.estimator import Classifier  # noqa: E402
from wordsight.evaluate.fewshot import draw_k_shot  # noqa: E402


def unit(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def prior_log_proba(d: dict, rows: str, center: np.ndarray | dict | None) -> np.ndarray:
    """The prior's log-probabilities of ``rows`` ("p" pool or "t" test) of dump ``d``, each way's
    unit vectors minus ``center[way]`` (None: uncentred), as ``ZeroShotClassifier`` scores them."""
    out = []
    for way in d["ways"]:
        X = unit(d[f"V{rows}_{way}"])
        if center is not None:
            X = unit(X - center[way])
        out.append(log_softmax(X @ d[f"E_{way}"].T * d[f"scale_{way}"]))
    return log_softmax(sum(out) / len(out))


def dump(task: str, seed: int, out: Path) -> Path:
    pool_s, test_s = TASKS[task](seed)
    say(f"{task} seed {seed}: {len(pool_s)} pool + {len(test_s)} test images")
    ext = Classifier(**BASE)
    pool, test = ext.extract(pool_s), ext.extract(test_s)
    model = Classifier(fusion="prior", **BASE).fit(pool.take(draw_k_shot(pool.labels, 1, seed + 1)))
    pipe = model.fusion_.prior_
    arrays = {"classes": np.asarray([str(c) for c in model.classes_]), "ways": np.asarray(list(pipe.ways_))}
    index = {c: i for i, c in enumerate(model.classes_)}
    for tag, blocks in (("p", pool), ("t", test)):
        arrays[f"X{tag}"] = np.asarray(model.fuse(blocks), np.float32)
        arrays[f"y{tag}"] = np.asarray([index[c] for c in blocks.labels])
        reading = model.fusion_.prior_features(pipe, blocks)
        for way in pipe.ways_:
            arrays[f"V{tag}_{way}"] = np.asarray(pipe.vectors(reading, way), np.float32)
    for way, zs in pipe.ways_.items():
        arrays[f"E_{way}"], arrays[f"scale_{way}"] = zs.class_embeddings_, np.float64(zs.scale_)
    path = out / f"{task}_seed{seed}.npz"
    np.savez(path, **arrays)
    say(f"wrote {path}")
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="fm-easy,fm-hard,photos,lfw-faces,fm-strong,fm-boots,fashion-mnist")
    p.add_argument("--seeds", default="0")
    p.add_argument("--out", default="/tmp/wordsight-fewshot-dump")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for task in args.tasks.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            dump(task, seed, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
