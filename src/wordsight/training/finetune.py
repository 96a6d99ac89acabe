"""Fine-tuning an image encoder with a linear head on labelled images, resumable after a kill.

    result = finetune("TRAIN/", "efficientnet-lite0", "model/finetune-checkpoint", FinetuneOptions())
    Classifier(encoders=(result.name,)).fit("TRAIN/")   # features of the fine-tuned encoder

``mode="last-blocks"`` trains the last ``blocks`` blocks of the encoder's block stack and every
layer after it (the final convolution and norm); ``mode="all"`` trains every weight. The encoder
stays in eval mode: BatchNorm keeps the statistics it was pretrained with (CPU batches of 16-32
are too small to re-estimate them) and stochastic depth is off, so a step is a deterministic
function of the data, the seed and the step number. Training: cross-entropy with label smoothing
on a linear head over the pooled embedding, AdamW (the encoder at ``lr``, the new head at
``head_lr``), a linear warm-up then a cosine schedule per step, augmented views
(:class:`~.augment.Augment`, a new view of each image every epoch), early stopping on a stratified
``val_fraction`` of the training images (the best epoch's weights are kept), bf16 autocast only
where the CPU has bf16 instructions.

Checkpoints (``out_dir``): ``state.json`` (options, data digest, step, epoch, best epoch, history,
the name and sha256 of each weight file) and ``checkpoint-<step>.safetensors`` (the trained weights,
the head and AdamW's moments), written every ``checkpoint_every`` steps and at each epoch's end, each
file atomically (temporary name, then rename), the JSON last; ``best-<step>.safetensors`` holds the
best epoch's weights. Weight files are named by their step and an older one is removed only once the
JSON names the newer: a kill between the two renames leaves the JSON and the files it names intact.
A rerun with the same data and options continues from the last checkpoint and ends with the same
weights as an uninterrupted run; other data or options are refused.

The result's encoder is registered under its own name (``ft:<base>@<weights digest>``,
:mod:`wordsight.encoders.finetuned`): its features are cached apart from the frozen encoder's.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io.safe_files import file_sha256

MODES = ("last-blocks", "all")
STATE = "state.json"
CHECKPOINT = "checkpoint"  # weight files: <kind>-<step>.safetensors, named in state.json's "files"
BEST = "best"
FORMAT = "wordsight-finetune-checkpoint"
FORMAT_VERSION = 1


class FinetuneError(ValueError):
    """Fine-tuning cannot start or continue (bad data, options, or a checkpoint of another run)."""


@dataclass(frozen=True)
class FinetuneOptions:
    mode: str = "last-blocks"
    blocks: int = 3               # last-blocks: how many blocks of the stack train
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-4              # encoder weights (pretrained: a small step)
    head_lr: float = 1e-3         # the new linear head
    weight_decay: float = 0.05
    warmup: float = 0.05          # fraction of the steps with a linear warm-up
    label_smoothing: float = 0.1
    val_fraction: float = 0.1     # held out for early stopping (0: no early stopping, last epoch kept)
    patience: int = 3             # epochs without a better validation score before stopping
    augment: bool = True
    checkpoint_every: int = 50    # steps between checkpoints (and one at every epoch's end)
    small_input: int | None = 160  # tiny images train at this size: features.engines.batch.SMALL_INPUT (tested)
    seed: int = 0

    def check(self) -> None:
        if self.mode not in MODES:
            raise FinetuneError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        for name in ("blocks", "epochs", "batch_size", "checkpoint_every"):
            if not (type(getattr(self, name)) is int and getattr(self, name) >= 1):
                raise FinetuneError(f"{name} must be an integer >= 1, not {getattr(self, name)!r}")
        if not 0 <= self.val_fraction < 1:
            raise FinetuneError(f"val_fraction must be in [0, 1), not {self.val_fraction}")
        for name in ("lr", "head_lr"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise FinetuneError(f"{name} must be a positive number, not {getattr(self, name)}")


@dataclass
class FinetuneResult:
    name: str                      # ft:<base>@<digest>, registered in this process
    base: str
    classes: list
    steps: int                     # optimizer steps taken in all runs together
    epochs_run: int
    best_epoch: int | None
    val_accuracy: float | None
    history: list = field(default_factory=list)   # per epoch: train loss, val loss and accuracy, seconds
    resumed_at_step: int = 0       # 0 for a fresh run
    seconds: float = 0.0           # training time in all runs together
    bf16: bool = False
    failures: list = field(default_factory=list)
    trained_tensors: int = 0


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU has bf16 instructions (AVX512-BF16 or AMX-BF16): autocast to bf16 is a
    gain there and a slow emulation elsewhere. Without ``cpuinfo`` (the text of /proc/cpuinfo) the
    one detection of :mod:`wordsight.features.engines.cpu` answers, ``$WORDSIGHT_CPU_FLAGS`` included."""
    from ..features.engines.cpu import has_bf16

    if cpuinfo is None:
        return has_bf16()
    return has_bf16(" ".join(w for line in cpuinfo.splitlines() if line.startswith("flags")
                             for w in line.split(":", 1)[-1].split()))


def block_stack(module):
    """The encoder's stack of blocks: the ``ModuleList`` / ``Sequential`` with the most children
    that hold parameters (EfficientNet's ``_blocks``, MobileNetV2's ``features``, a ViT's layers)."""
    from torch import nn

    best, best_n = None, 0
    for name, m in module.named_modules():
        if isinstance(m, (nn.ModuleList, nn.Sequential)):
            n = sum(1 for c in m.children() if any(True for _ in c.parameters()))
            if n > best_n:
                best, best_n = (name, m), n
    if best is None:
        raise FinetuneError("this encoder has no stack of blocks to fine-tune: use mode='all'")
    return best


def trainable_names(encoder, mode: str, blocks: int) -> list[str]:
    """Names of the parameters that train: all, or the last ``blocks`` blocks of the stack and
    every parameter registered after the stack (the layers between it and the embedding)."""
    names = [n for n, _ in encoder.named_parameters()]
    if mode == "all":
        return names
    stack_name, stack = block_stack(encoder)
    kids = [(n, c) for n, c in stack.named_children() if any(True for _ in c.parameters())]
    prefixes = tuple(f"{stack_name}.{n}." for n, _ in kids[-blocks:])
    in_stack = [i for i, n in enumerate(names) if n.startswith(f"{stack_name}.")]
    after = set(names[in_stack[-1] + 1:]) if in_stack else set()
    return [n for n in names if n.startswith(prefixes) or n in after]


def lr_factor(step: int, total: int, warmup: float) -> float:
    """Linear warm-up over ``warmup * total`` steps, then a cosine from 1 to 0."""
    w = max(1, int(round(warmup * total)))
    if step < w:
        return (step + 1) / w
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - w) / max(1, total - w))))


def split_train_val(labels: list, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified: ``fraction`` of each class (at least one image of classes with two or more)."""
    rng = np.random.default_rng([seed, 7])
    train, val = [], []
    labels = np.asarray([str(v) for v in labels])
    for c in sorted(set(labels)):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        k = 0 if fraction <= 0 or len(idx) < 2 else max(1, int(round(fraction * len(idx))))
        val += idx[:k].tolist()
        train += idx[k:].tolist()
    return np.sort(np.array(train, np.int64)), np.sort(np.array(val, np.int64))


def _atomic_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def _atomic_tensors(out: Path, kind: str, step: int, tensors: dict) -> dict:
    """Write ``<kind>-<step>.safetensors`` atomically; its entry for state.json's ``files``."""
    from safetensors.torch import save_file

    path = out / f"{kind}-{step}.safetensors"
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().clone() for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)
    return {"file": path.name, "sha256": file_sha256(path)}


def _weight_file(out: Path, entry) -> tuple[Path, str | None]:
    """The weight file a state.json ``files`` entry names (a plain name inside ``out``) and its sha256."""
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or Path(entry["file"]).name != entry["file"]:
        return out / "missing.safetensors", None
    return out / entry["file"], entry.get("sha256")


def _drop_stale(out: Path, state: dict) -> None:
    """Remove the weight files state.json no longer names (older steps)."""
    named = {e.get("file") for e in state["files"].values() if isinstance(e, dict)}
    for path in out.glob("*.safetensors"):
        if path.name not in named and path.name.split("-")[0] in (CHECKPOINT, BEST):
            path.unlink(missing_ok=True)


class _Images:
    """Labelled images read, augmented and preprocessed as the feature engine does (tiny images
    at ``small_input`` px)."""

    def __init__(self, samples, config, options: FinetuneOptions, flexible: bool):
        from ..features.engines.batch import TINY_FRACTION

        self.samples, self.config, self.options = samples, config, options
        self.small = None
        if options.small_input and flexible and options.small_input < config.input_size:
            size = int(options.small_input)
            self.small = dataclasses.replace(config, input_size=size,
                                             resize_size=round(size * config.resize_size / config.input_size))
        self.tiny_side = config.input_size // TINY_FRACTION
        from ..estimator.augment import Augment

        self.augment = Augment(seed=options.seed) if options.augment else None

    def read(self, i: int):
        return _read(self.samples[i])

    def array(self, i: int, epoch: int | None) -> np.ndarray:
        from ..encoders.preprocess import preprocess

        img = self.read(i)
        cfg = self.small if self.small is not None and min(img.size) <= self.tiny_side else self.config
        if epoch is not None and self.augment is not None:
            img = self.augment.apply(img, epoch + 1)  # a new view of each image every epoch
        return preprocess(img, cfg)


def _data_digest(samples, labels, classes) -> str:
    h = hashlib.sha256()
    for s, y in zip(samples, labels):
        h.update(f"{s.path}\0{y}\n".encode())
    h.update(json.dumps([str(c) for c in classes]).encode())
    return h.hexdigest()[:16]


def _read(sample):
    """A training row's image: a file, or a frame of a video / DICOM / TIFF (decoded alone, when
    its batch needs it: frames are never all held in memory)."""
    from ..io.media_ref import media_of

    if media_of(sample.path) is None:
        from ..io.images import read_image

        return read_image(sample.path)
    from ..io.media_read import sample_image

    return sample_image(sample)


def _frames_readable(frames) -> dict:
    """``{path: reason}`` of the frames of one file that do not decode: one streaming pass over the file
    (the pixels are dropped as they come: memory is one frame)."""
    from ..features.engines.media_frames import decode_group

    out = decode_group(frames, lambda sample, pixels: (True, None))
    return {s.path: out.get(s.path.frame, (None, "frame not decoded"))[1] for s in frames
            if out.get(s.path.frame, (None,))[0] is None}


def _readable(source) -> tuple[list, list]:
    """The samples that read, and a Problem for each that does not; a file's frames are checked in
    one pass over the file."""
    from ..io.images import ImageError, read_image
    from ..io.media_ref import media_of
    from ..io.sources import Problem

    bad, groups = {}, {}
    for s in source.samples:
        ref = media_of(s.path)
        if ref is not None and ref.kind != "image":
            groups.setdefault(ref.file, []).append(s)
            continue
        try:
            _read(s) if ref is not None else read_image(s.path)
        except (ImageError, OSError, ValueError) as e:
            bad[s.path] = str(e)
    for frames in groups.values():
        bad.update(_frames_readable(frames))
    return ([s for s in source.samples if s.path not in bad],
            list(source.problems) + [Problem(p, reason) for p, reason in bad.items()])


def _progress(total: int, initial: int, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", desc="fine-tuning", dynamic_ncols=True,
                disable=quiet or not sys.stderr.isatty(), file=sys.stderr)


def finetune(data, base: str, out_dir, options: FinetuneOptions | None = None, *, quiet: bool = False,
             stop_after: int | None = None) -> FinetuneResult:
    """Fine-tune ``base`` on the labelled images ``data`` (a folder, manifest or Source),
    checkpointing into ``out_dir`` and continuing from a checkpoint found there.

    ``stop_after``: return after this many optimizer steps of this call (for a test's
    interruption; the checkpoint is written first). The returned result's encoder is registered
    under its own name."""
    import torch

    from ..encoders import create, get_config
    from ..encoders.base import CNNEncoder
    from ..encoders.finetuned import register_module

    options = options or FinetuneOptions()
    options.check()
    cfg = get_config(base)
    samples, failures, labels, classes = _labelled(data, base, cfg)
    y_all = np.array([classes.index(y) for y in labels], np.int64)
    tr, va = split_train_val(labels, options.val_fraction, options.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    identity = {"format": FORMAT, "version": FORMAT_VERSION, "base": base, "options": dataclasses.asdict(options),
                "data": _data_digest(samples, labels, classes)}

    torch.manual_seed(options.seed)
    encoder = create(base).eval()
    names = trainable_names(encoder, options.mode, options.blocks)
    params = dict(encoder.named_parameters())
    for n, p in params.items():
        p.requires_grad_(n in set(names))
    head = torch.nn.Linear(cfg.dim, len(classes))
    optim = torch.optim.AdamW([{"params": [params[n] for n in names], "lr": options.lr},
                               {"params": list(head.parameters()), "lr": options.head_lr}],
                              weight_decay=options.weight_decay)
    steps_per_epoch = math.ceil(len(tr) / options.batch_size)
    total = steps_per_epoch * options.epochs
    state = {**identity, "step": 0, "epoch": 0, "best": None, "bad_epochs": 0, "history": [], "finished": False,
             "seconds": 0.0, "classes": [str(c) for c in classes], "files": {}}
    resumed = 0
    if (out / STATE).exists():
        state = _resume(out, identity, encoder, head, optim, names)
        resumed = state["step"]
    images = _Images(samples, cfg, options, isinstance(encoder, CNNEncoder))
    bf16 = cpu_has_bf16()

    def forward(idx, epoch):
        return _forward(encoder, head, [images.array(int(i), epoch) for i in idx], bf16)

    taken = 0
    started = time.perf_counter() - state["seconds"]
    bar = _progress(total, state["step"], quiet)
    try:
        while not state["finished"]:
            epoch = state["epoch"]
            order = tr[np.random.default_rng([options.seed, epoch]).permutation(len(tr))]
            first = state["step"] - epoch * steps_per_epoch  # batches of this epoch already taken
            losses = state.setdefault("epoch_losses", [])
            for b in range(first, steps_per_epoch):
                idx = order[b * options.batch_size:(b + 1) * options.batch_size]
                factor = lr_factor(state["step"], total, options.warmup)
                for g, lr in zip(optim.param_groups, (options.lr, options.head_lr)):
                    g["lr"] = lr * factor
                loss = torch.nn.functional.cross_entropy(forward(idx, epoch), torch.from_numpy(y_all[idx]),
                                                         label_smoothing=options.label_smoothing)
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
                losses.append(loss.item())
                state["step"] += 1
                taken += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.3f}")
                state["seconds"] = time.perf_counter() - started
                end_of_epoch = b == steps_per_epoch - 1
                if not end_of_epoch and (state["step"] % options.checkpoint_every == 0
                                         or (stop_after is not None and taken >= stop_after)):
                    _save(out, state, encoder, head, optim, names)
                if stop_after is not None and taken >= stop_after and not end_of_epoch:
                    return _result(state, base, classes, encoder, names, out, resumed, bf16, failures, partial=True)
            val_loss, val_acc = _validate(forward, va, y_all, options.batch_size)
            _end_epoch(state, losses, val_loss, val_acc, started, options,
                       lambda: _trained(encoder, head, names), out)
            _save(out, state, encoder, head, optim, names)
            if not quiet:
                bar.write(f"epoch {epoch + 1}: train loss {state['history'][-1]['train_loss']:.4f}"
                          + (f", val loss {val_loss:.4f}, val accuracy {val_acc:.3f}" if val_acc is not None else ""),
                          file=sys.stderr)
            if stop_after is not None and taken >= stop_after and not state["finished"]:
                return _result(state, base, classes, encoder, names, out, resumed, bf16, failures, partial=True)
    finally:
        bar.close()
    if state["best"] is not None:  # the best epoch's weights, not the last epoch's
        _load_trained(*_weight_file(out, state["files"].get(BEST)), encoder, None, names)
    return _result(state, base, classes, encoder, names, out, resumed, bf16, failures, register=register_module)


def _forward(encoder, head, xs: list, bf16: bool):
    """The head's logits (float32) for the preprocessed arrays ``xs``; tiny and full-size images run
    at their own sizes, each size as one batch (bf16 autocast where the CPU has it)."""
    import torch

    groups: dict = {}
    for j, x in enumerate(xs):
        groups.setdefault(x.shape, []).append(j)
    logits = [None] * len(xs)
    for js in groups.values():
        x = torch.from_numpy(np.stack([xs[j] for j in js]))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            z = head(encoder(x)["embedding"]).float()
        for k, j in enumerate(js):
            logits[j] = z[k]
    return torch.stack(logits)


def _validate(forward, va: np.ndarray, y_all: np.ndarray, batch_size: int) -> tuple[float | None, float | None]:
    """Mean cross-entropy and accuracy on the validation images (``None, None`` without any)."""
    import torch

    if len(va) == 0:
        return None, None
    with torch.no_grad():
        losses, hits = [], 0
        for i in range(0, len(va), batch_size):
            idx = va[i:i + batch_size]
            z = forward(idx, None)
            y = torch.from_numpy(y_all[idx])
            losses.append(float(torch.nn.functional.cross_entropy(z, y, reduction="sum")))
            hits += int((z.argmax(1) == y).sum())
    return sum(losses) / len(va), hits / len(va)


def _labelled(data, base: str, cfg) -> tuple[list, list, list, list]:
    """The readable samples of ``data``, the failures, their labels and the sorted classes; refused
    with the reason unless ``base`` is a packaged image encoder and every image has a label of at
    least two classes."""
    from ..encoders.finetuned import is_finetuned
    from ..io.sources import open_source

    if cfg.modality != "image" or is_finetuned(base):
        raise FinetuneError(f"{base!r}: fine-tuning takes a packaged image encoder")
    samples, failures = _readable(open_source(data))
    labels = [s.label for s in samples]
    if any(y is None for y in labels):
        raise FinetuneError("fine-tuning needs labelled images (a class folder tree or a manifest with labels)")
    classes = sorted(set(labels), key=str)
    if len(classes) < 2:
        raise FinetuneError(f"fine-tuning needs at least two classes, found {len(classes)}")
    return samples, failures, labels, classes


def _end_epoch(state: dict, losses: list, val_loss, val_acc, started: float, options, trained, out: Path) -> None:
    """Record the epoch that just ended in ``state``: its history row, the best epoch so far (its
    weights, ``trained()``, written when it improves), early stopping's count and whether training
    is finished."""
    epoch = state["epoch"] + 1
    state["history"].append({"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else None,
                             "val_loss": val_loss, "val_accuracy": val_acc,
                             "seconds": round(time.perf_counter() - started, 1)})
    state["epoch_losses"] = []
    state["epoch"] = epoch
    better = val_acc is not None and (state["best"] is None or (val_acc, -val_loss) >
                                      (state["best"]["val_accuracy"], -state["best"]["val_loss"]))
    if better:
        state["best"] = {"epoch": epoch, "val_accuracy": val_acc, "val_loss": val_loss}
        state["bad_epochs"] = 0
        state["files"][BEST] = _atomic_tensors(out, BEST, state["step"], trained())
    elif val_acc is not None:
        state["bad_epochs"] += 1
    state["finished"] = state["epoch"] >= options.epochs or state["bad_epochs"] >= options.patience
    state["seconds"] = time.perf_counter() - started


def _trained(encoder, head, names) -> dict:
    params = dict(encoder.named_parameters())
    out = {f"encoder/{n}": params[n] for n in names}
    out.update({f"head/{n}": p for n, p in head.named_parameters()})
    return out


def _save(out: Path, state: dict, encoder, head, optim, names) -> None:
    tensors = _trained(encoder, head, names)
    by_param = {id(p): n for n, p in tensors.items()}
    for group in optim.param_groups:
        for p in group["params"]:
            for k, v in optim.state.get(p, {}).items():
                tensors[f"adamw/{k}/{by_param[id(p)]}"] = v if v.ndim else v.reshape(1)
    state["files"][CHECKPOINT] = _atomic_tensors(out, CHECKPOINT, state["step"], tensors)
    _atomic_json(out / STATE, state)
    _drop_stale(out, state)


def _load_trained(path: Path, sha: str | None, encoder, head, names, optim=None) -> None:
    import torch
    from safetensors.torch import load_file

    if sha is None or not path.is_file() or file_sha256(path) != sha:
        raise FinetuneError(f"{path}: missing or changed since its state was written; delete {path.parent} to "
                            "start over")
    tensors = load_file(str(path))
    params = dict(encoder.named_parameters())
    with torch.no_grad():
        for n in names:
            params[n].copy_(tensors[f"encoder/{n}"])
        if head is not None:
            for n, p in head.named_parameters():
                p.copy_(tensors[f"head/{n}"])
    if optim is not None:
        lookup = {id(p): n for n, p in _trained(encoder, head, names).items()}
        for group in optim.param_groups:
            for p in group["params"]:
                key = lookup[id(p)]
                st = {k.split("/")[1]: v for k, v in tensors.items() if k.startswith("adamw/") and
                      k.split("/", 2)[2] == key}
                if st:
                    st["step"] = st["step"].reshape(())
                    optim.state[p] = st


def _resume(out: Path, identity: dict, encoder, head, optim, names) -> dict:
    from ..io.safe_files import UnsafeFileError, read_regular

    try:
        state = json.loads(read_regular(out / STATE, 64 << 20))
    except (UnsafeFileError, ValueError) as e:
        raise FinetuneError(f"{out / STATE}: cannot read the checkpoint state ({e}); delete {out} to start over") \
            from None
    mine = {k: state.get(k) for k in identity}
    if mine != identity:
        diff = [k for k in identity if mine[k] != identity[k]]
        raise FinetuneError(f"{out}: holds a checkpoint of another fine-tuning run (different {', '.join(diff)}); "
                            "use another folder or delete it to start over")
    ok = (type(state.get("step")) is int and type(state.get("epoch")) is int and 0 <= state["epoch"]
          and 0 <= state["step"] and type(state.get("bad_epochs")) is int and isinstance(state.get("history"), list)
          and isinstance(state.get("files"), dict) and isinstance(state.get("finished"), bool)
          and (state.get("best") is None or isinstance(state["best"], dict)))
    if not ok:
        raise FinetuneError(f"{out / STATE}: not a checkpoint state this wordsight wrote (fields of the wrong type); "
                            f"delete {out} to start over")
    _load_trained(*_weight_file(out, state["files"].get(CHECKPOINT)), encoder, head, names, optim)
    return state


def _result(state, base, classes, encoder, names, out, resumed, bf16, failures, partial=False,
            register=None) -> FinetuneResult:
    name = register(base, encoder) if register else ""
    best = state["best"] or {}
    return FinetuneResult(name=name, base=base, classes=list(classes), steps=state["step"],
                          epochs_run=len(state["history"]), best_epoch=best.get("epoch"),
                          val_accuracy=best.get("val_accuracy"), history=list(state["history"]),
                          resumed_at_step=resumed, seconds=round(state["seconds"], 1), bf16=bf16,
                          failures=failures, trained_tensors=len(names))
