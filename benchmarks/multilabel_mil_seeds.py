"""The hidden-layer mil head's recipe (hidden 1024, 30 epochs; chosen on held-out training mosaics by
``multilabel_mil.py --hidden 512,1024 --epochs 20,30``) refitted with other seeds on the same 10,000
training mosaics, test mAP on the 1,000 test mosaics: the seed spread of its figure.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/multilabel_mil_seeds.py 1,2
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from sklearn.metrics import average_precision_score  # noqa: E402

from multilabel_mil import ENC, rows_of  # noqa: E402
from multilabel_mosaics import source  # noqa: E402
from wordsight._util.numerics import sigmoid  # noqa: E402
from wordsight.estimator.heads import MILHead  # noqa: E402
from wordsight.estimator.tasks import MultiLabelTask  # noqa: E402
from wordsight.io.datasets import FASHION_MNIST_CLASSES  # noqa: E402


def main(seeds: str) -> None:
    train, test = source("train", 10000, 0, False), source("test", 1000, 1, False)
    classes = np.array(sorted(FASHION_MNIST_CLASSES))
    task = MultiLabelTask(np.full(len(classes), 0.5))
    Ytr, Yte = task.targets(train.labels, classes), task.targets(test.labels, classes)
    bag = f"tilebag:2,3:{ENC}"
    (Mtr, layout), (Mte, _) = rows_of(train, [ENC, bag]), rows_of(test, [ENC, bag])
    for seed in (int(s) for s in seeds.split(",")):
        t = time.time()
        head = MILHead(hidden=1024, random_state=seed).for_row(layout).fit(Mtr, Ytr, len(classes))
        P = sigmoid(head.logits(Mte))
        m = round(average_precision_score(Yte, P, average="macro"), 4)
        print(json.dumps({"seed": seed, "mAP": m, "s": round(time.time() - t)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "1,2")
