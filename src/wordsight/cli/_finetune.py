"""``fit --finetune``: fine-tune the encoder first (resumable), then fit the head on its features."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from ._common import encoders_arg

CHECKPOINT_DIR = "finetune-checkpoint"  # inside --out while training; removed once the model is saved


def add_finetune_options(p) -> None:
    from ..training.finetune import MODES, FinetuneOptions

    d = FinetuneOptions()
    g = p.add_argument_group("fine-tuning (the encoder's weights train with a linear head before the head is fitted)")
    g.add_argument("--finetune", default=None, choices=MODES,
                   help="train the encoder's last blocks, or all of it; resumable: rerun the same command after a kill")
    g.add_argument("--finetune-epochs", type=int, default=d.epochs)
    g.add_argument("--finetune-blocks", type=int, default=d.blocks, help="last-blocks: how many blocks train")
    g.add_argument("--finetune-lr", type=float, default=d.lr, help="encoder learning rate (the head's is 10x)")
    g.add_argument("--finetune-batch-size", type=int, default=d.batch_size)
    g.add_argument("--finetune-val", type=float, default=d.val_fraction,
                   help="fraction of the training images held out for early stopping")
    g.add_argument("--finetune-patience", type=int, default=d.patience)


def checkpoint_dir(args) -> Path:
    return Path(args.out) / CHECKPOINT_DIR


def finetune_from_args(args, data) -> str:
    """Fine-tune the one encoder of ``--encoders``; the fine-tuned encoder's name."""
    from ..training.finetune import FinetuneOptions, finetune

    encoders = encoders_arg(args)
    if len(encoders) != 1:
        raise SystemExit(f"--finetune trains one encoder; --encoders names {len(encoders)}")
    options = FinetuneOptions(mode=args.finetune, epochs=args.finetune_epochs, blocks=args.finetune_blocks,
                              lr=args.finetune_lr, head_lr=10 * args.finetune_lr,
                              batch_size=args.finetune_batch_size, val_fraction=args.finetune_val,
                              patience=args.finetune_patience, seed=args.seed)
    r = finetune(data, encoders[0], checkpoint_dir(args), options, quiet=args.quiet)
    best = (f", best epoch {r.best_epoch} (validation accuracy {r.val_accuracy:.3f})"
            if r.best_epoch is not None else "")
    resumed = f", resumed at step {r.resumed_at_step}" if r.resumed_at_step else ""
    print(f"fine-tuned {encoders[0]} ({args.finetune}, {r.trained_tensors} weight tensors): {r.steps} steps, "
          f"{r.epochs_run} epochs in {r.seconds:.0f} s{resumed}{best}{', bf16' if r.bf16 else ''} -> {r.name}",
          file=sys.stderr)
    return r.name


def remove_checkpoints(args) -> None:
    shutil.rmtree(checkpoint_dir(args), ignore_errors=True)
