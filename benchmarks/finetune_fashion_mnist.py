"""Fine-tuned vs frozen encoder on a Fashion-MNIST subset: the same logistic head on the features.

    nice python benchmarks/finetune_fashion_mnist.py --train-per-class 50 --test-per-class 100 \
        --mode last-blocks --epochs 5 --out runs/ft-bench

Writes the seeded, balanced subsets as PNG folders (``wordsight data fashion-mnist``'s files),
fits ``Classifier()`` (EfficientNet-Lite0, image fusion, logistic head) on the frozen encoder's
features, then fine-tunes the encoder (``models.finetune``: the same code as ``wordsight fit
--finetune``) and fits the same head on the fine-tuned encoder's features; scores both on the test
subset. Prints accuracies and wall times and writes ``<out>/results.json``. The fine-tuning is
resumable: rerun the same command after a kill.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-per-class", type=int, default=50)
    ap.add_argument("--test-per-class", type=int, default=100)
    ap.add_argument("--mode", default="last-blocks", choices=["last-blocks", "all"])
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--out", default="runs/ft-bench")
    args = ap.parse_args()
    import torch

    from wordsight.estimator import Classifier
    from wordsight.io.datasets import write_image_folder
    from wordsight.training.finetune import FinetuneOptions, finetune

    out = Path(args.out)
    train = write_image_folder(out / "data", "train", per_class=args.train_per_class)
    test = write_image_folder(out / "data", "test", per_class=args.test_per_class)
    test_paths = sorted(str(p) for p in test.rglob("*.png"))
    y_test = [Path(p).parent.name for p in test_paths]
    results = {"train_images": 10 * args.train_per_class, "test_images": len(test_paths), "args": vars(args),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"}

    t = time.perf_counter()
    frozen = Classifier().fit(train)
    results["frozen"] = {"accuracy": float(frozen.score(test_paths, y_test)),
                         "seconds_fit_and_score": round(time.perf_counter() - t, 1)}
    print(f"frozen encoder + logistic head: accuracy {results['frozen']['accuracy']:.4f} "
          f"({results['frozen']['seconds_fit_and_score']:.0f} s)", flush=True)

    t = time.perf_counter()
    options = FinetuneOptions(mode=args.mode, blocks=args.blocks, epochs=args.epochs, batch_size=args.batch_size,
                              lr=args.lr, head_lr=10 * args.lr)
    r = finetune(train, "efficientnet-lite0", out / "checkpoint", options)
    ft_seconds = time.perf_counter() - t
    t = time.perf_counter()
    tuned = Classifier(encoders=(r.name,)).fit(train)
    acc = float(tuned.score(test_paths, y_test))
    results["finetuned"] = {"accuracy": acc, "encoder": r.name, "steps": r.steps, "epochs_run": r.epochs_run,
                            "best_epoch": r.best_epoch, "val_accuracy": r.val_accuracy, "history": r.history,
                            "training_seconds_all_runs": r.seconds, "training_seconds_this_run": round(ft_seconds, 1),
                            "resumed_at_step": r.resumed_at_step, "bf16": r.bf16,
                            "seconds_head_fit_and_score": round(time.perf_counter() - t, 1)}
    print(f"fine-tuned ({args.mode}) encoder + logistic head: accuracy {acc:.4f}; fine-tuning {r.steps} steps, "
          f"{r.epochs_run} epochs, {r.seconds:.0f} s (best epoch {r.best_epoch}, validation accuracy "
          f"{r.val_accuracy}); head fit + score {results['finetuned']['seconds_head_fit_and_score']:.0f} s",
          flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
