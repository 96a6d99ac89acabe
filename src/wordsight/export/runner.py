"""Run a wordsight model exported with ``wordsight export --format onnx``.

Standalone on purpose: it needs numpy, Pillow and onnxruntime (and ``transformers`` only for the
text encoder), not torch or wordsight. ``wordsight export`` copies this file into the export
folder, next to ``pipeline.json``::

    from runner import Pipeline
    p = Pipeline("exported/")
    p.predict_proba(["a.jpg", "b.png"])   # (2, n_classes), columns in p.classes order
                                          # (fusion 'prior': the language prior mixed in)
    p.predict(["a.jpg"])                  # class names
    p.encode_text(["a photo of a cat"])   # L2-normalised text embeddings

Preprocessing repeats wordsight's exactly (EXIF orientation, alpha on white, JPEG DCT-scaled
draft decoding, shorter side resized, centre crop, normalisation), so the probabilities equal
``Classifier.predict_proba`` within float32 rounding.

Before any file is used, the folder is verified as every saved wordsight folder is
(``wordsight.storage``, repeated here in a few lines because this file runs without wordsight):
``pipeline.json``'s own checksum, then every file it lists confined to the folder (no ``..``, no
absolute path, no link out), a regular file under a size cap, its sha256 right; every file the
pipeline runs must be listed. A refusal is one :class:`ExportFolderError` naming the file.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
             "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}


SPEC = "pipeline.json"
MAX_SPEC_BYTES = 8 << 20
MAX_FILE_BYTES = 4 << 30  # the largest exported file (a text encoder) is ~0.5 GB


class ExportFolderError(ValueError):
    """An exported folder is damaged, edited after export, or names files outside itself."""


def _canonical(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _regular(path: Path, limit: int) -> Path:
    try:
        st = os.stat(path)
    except OSError as e:
        raise ExportFolderError(f"{path}: cannot read ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ExportFolderError(f"{path}: not a regular file")
    if st.st_size > limit:
        raise ExportFolderError(f"{path}: {st.st_size:,} bytes, more than the limit of {limit:,}")
    return path


def inside(folder: Path, name) -> Path:
    """``folder / name`` for a relative ``name`` that stays inside ``folder`` (no ``..``, no
    absolute path, no link out)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ExportFolderError(f"{folder}: {name!r} is not a file name")
    if Path(name).is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ExportFolderError(f"{folder}: {name!r} is an absolute path; only names inside the folder")
    if ".." in name.replace("\\", "/").split("/"):
        raise ExportFolderError(f"{folder}: {name!r} leaves the folder ('..')")
    if not (folder / name).resolve().is_relative_to(folder.resolve()):
        raise ExportFolderError(f"{folder}: {name!r} is a link that leads out of the folder")
    return folder / name


def verified(folder, name: str = SPEC) -> dict:
    """The spec ``name`` of an exported folder, its checksum and every file it lists verified."""
    folder = Path(folder)
    path = _regular(folder / name, MAX_SPEC_BYTES)
    try:
        spec = json.loads(path.read_bytes())
    except ValueError as e:
        raise ExportFolderError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(spec, dict) or "config_sha256" not in spec:
        raise ExportFolderError(f"{path}: no checksums (exported by an older wordsight?): export the model again")
    if spec.pop("config_sha256") != _canonical(spec):
        raise ExportFolderError(f"{path}: checksum mismatch: {name} was edited or damaged after export")
    files = spec.get("files")
    if not isinstance(files, dict):
        raise ExportFolderError(f"{path}: field 'files' must map each file name to its sha256")
    for file, digest in files.items():
        p = _regular(inside(folder, file), MAX_FILE_BYTES)
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != digest:
            raise ExportFolderError(f"{p}: checksum mismatch: the file was modified or truncated after export")
    return spec


def read_spec(folder) -> dict:
    """``pipeline.json``, verified (:func:`verified`), every file the pipeline runs among those listed."""
    spec, path = verified(folder), Path(folder) / SPEC
    files = spec["files"]
    parts = [*(spec.get("image_encoders") or []), *(spec.get(k) for k in ("head", "prior", "text_block", "text_encoder"))]
    for part in parts:
        if part is not None and (not isinstance(part, dict) or part.get("file") not in files):
            raise ExportFolderError(f"{path}: {part!r} runs a file not listed in 'files'")
    tokenizer = (spec.get("text_encoder") or {}).get("tokenizer")
    if tokenizer is not None and not any(n.startswith(f"{tokenizer}/") for n in files):
        raise ExportFolderError(f"{path}: tokenizer {tokenizer!r} is not listed in 'files'")
    return spec


def _session(path, threads=None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or min(os.cpu_count() or 1, 8)
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _to_rgb(img):
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    if img.mode in ("I", "F") or img.mode.startswith("I;"):
        # wordsight.io.window's default rule: the 0.5th..99.5th percentile of the finite values onto
        # 0..255, clipped outside, rounded; NaN and -inf at the low end, +inf at the high end
        a = np.asarray(img, np.float64)
        finite = a[np.isfinite(a)]
        lo, hi = (float(v) for v in np.percentile(finite, (0.5, 99.5))) if finite.size else (0.0, 0.0)
        if not hi > lo:
            return Image.new("RGB", img.size)
        a = (np.nan_to_num(a, nan=lo, posinf=hi, neginf=lo) - lo) * (255.0 / (hi - lo))
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L").convert("RGB")
    return img.convert("RGB")


def choose(data: bytes, enc: dict) -> dict:
    """The preprocessing for this image: tiny images (28-px icons) run at a smaller input size."""
    tiny = enc.get("tiny")
    if tiny:
        w, h = Image.open(io.BytesIO(data)).size
        if min(w, h) <= tiny["max_side"]:
            return tiny["preprocessing"]
    return enc["preprocessing"]


def decode(data: bytes, draft_size: int | None = None):
    img = Image.open(io.BytesIO(data))
    if draft_size and img.format == "JPEG":
        img.draft("RGB", (draft_size, draft_size))
    img.seek(0)
    img.load()
    return _to_rgb(ImageOps.exif_transpose(img))


def apply_view(img, view: dict | None):
    """The language prior's view of a decoded image (``wordsight.features.views``): ``invert``, or
    ``light-background`` (invert a light object on a plain dark background, judged on the frame)."""
    name = (view or {}).get("name", "plain")
    if name == "plain":
        return img
    if name == "light-background":
        grey = np.asarray(img.convert("L"), dtype=np.float32)
        w = max(1, min(view["frame"], min(grey.shape) // 4))
        frame = np.concatenate([grey[:w].ravel(), grey[-w:].ravel(), grey[:, :w].ravel(), grey[:, -w:].ravel()])
        if float(np.mean(frame < view["near_black"])) < view["dark_share"]:
            return img
    elif name != "invert":
        raise ValueError(f"unknown view {name!r}")
    return ImageOps.invert(img.convert("RGB"))


def tiles(enc: dict) -> list:
    """(grid, index) of every tile a tile bag's encoder reads (``wordsight.encoders.tilebag``),
    row-major, grid by grid; ``[None]`` (the whole image) for any other encoder."""
    grids = (enc.get("tiles") or {}).get("grids")
    return [(g, i) for g in grids for i in range(g * g)] if grids else [None]


def cut(img, tile):
    """Tile ``(grid, index)`` of the decoded image (``wordsight.features.views.tile_of``); None: all of it."""
    if tile is None:
        return img
    g, i = tile
    r, c = divmod(i, g)
    w, h = img.size
    return img.crop((c * w // g, r * h // g, (c + 1) * w // g, (r + 1) * h // g))


def preprocess(img, pre: dict) -> np.ndarray:
    size, resize = pre["input_size"], pre["resize_size"]
    w, h = img.size
    scale = resize / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), _RESAMPLE[pre["interpolation"]], reducing_gap=3.0 if min(w, h) > 2 * resize else None)
    left, top = (nw - size) // 2, (nh - size) // 2
    img = img.crop((left, top, left + size, top + size))
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


class Pipeline:
    def __init__(self, folder, threads: int | None = None):
        self.folder = Path(folder)
        self.spec = read_spec(self.folder)
        self.classes = self.spec["classes"]
        self.encoders = [(e, _session(self.folder / e["file"], threads)) for e in self.spec["image_encoders"]]
        self.head = _session(self.folder / self.spec["head"]["file"], threads)
        prior = self.spec.get("prior")
        self.prior = None if prior is None else (prior, _session(self.folder / prior["file"], threads))
        self._text = self._text_block = None
        self.threads = threads

    @staticmethod
    def _read(images) -> list:
        return [im if isinstance(im, bytes) else Path(im).read_bytes() for im in images]

    def features(self, images, batch_size: int = 32) -> np.ndarray:
        """Fused features: per encoder, the L2-normalised embedding (a tile bag: each tile read as
        an image from one decode, each L2-normalised), concatenated; then the text block (fusions
        ``text``, ``concat``) from the ImageNet logits of the same reads."""
        datas = self._read(images)
        if not datas:
            return np.zeros((0, self.head.get_inputs()[0].shape[1]), np.float32)
        text = self.spec.get("text_block")
        blocks, logits = [], None
        for k, (enc, sess) in enumerate(self.encoders):
            wanted = ["embedding", "logits"] if text and k == text["encoder"] else ["embedding"]
            got = {}
            by_size: dict[int, list[int]] = {}
            pres = [choose(d, enc) for d in datas]
            for i, pre in enumerate(pres):
                by_size.setdefault(pre["input_size"], []).append(i)
            views = tiles(enc)
            for rows in by_size.values():
                for j in range(0, len(rows), batch_size):
                    part = rows[j : j + batch_size]
                    imgs = [decode(datas[i], pres[i]["resize_size"]) for i in part]
                    x = np.stack([preprocess(cut(img, v), pres[i]) for img, i in zip(imgs, part) for v in views])
                    for name, value in zip(wanted, sess.run(wanted, {"pixel_values": x})):
                        value = value.reshape(len(part), -1)  # a bag's tiles side by side
                        got.setdefault(name, np.zeros((len(datas), value.shape[1]), np.float32))[part] = value
            e = got["embedding"].reshape(len(datas), len(views), -1)
            logits = got.get("logits", logits)
            e = e / np.maximum(np.linalg.norm(e, axis=2, keepdims=True), 1e-12)
            blocks.append(e.reshape(len(datas), -1))
        if text:
            if self._text_block is None:
                self._text_block = _session(self.folder / text["file"], self.threads)
            block = self._text_block.run(["text"], {"logits": logits})[0]
            blocks = [*blocks, block] if text["after_image_blocks"] else [block]
        return np.concatenate(blocks, 1).astype(np.float32)

    def prior_log_proba(self, images, batch_size: int = 32) -> np.ndarray:
        """The language prior (``fusion='prior'``): the prior's view of each image at the encoder's
        full input size -> ImageNet logits and embedding -> zero-shot log-probabilities."""
        spec, sess = self.prior
        _, encoder = self.encoders[spec["encoder"]]
        pre, datas, out = spec["preprocessing"], self._read(images), []
        wanted = [i.name for i in sess.get_inputs()]  # "embedding", and "logits" for ConSE
        for j in range(0, len(datas), batch_size):
            x = np.stack([preprocess(apply_view(decode(d, pre["resize_size"]), spec["view"]), pre)
                          for d in datas[j : j + batch_size]])
            reading = dict(zip(wanted, encoder.run(wanted, {"pixel_values": x})))
            out.append(sess.run(["prior"], reading)[0])
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)))

    def predict_proba(self, images) -> np.ndarray:
        datas = self._read(images)
        inputs = {"features": self.features(datas)}
        if self.prior is not None and "prior" in [i.name for i in self.head.get_inputs()]:  # not at weight 0
            inputs["prior"] = self.prior_log_proba(datas)
        return self.head.run(["probabilities"], inputs)[0]

    def predict(self, images) -> list:
        """The most probable class per image; for a multi-label model (``task_state`` thresholds
        in the spec) the list of labels whose probability reaches their threshold."""
        P = self.predict_proba(images)
        th = (self.spec.get("task_state") or {}).get("thresholds")
        if th is not None:
            return [[c for c, p, t in zip(self.classes, row, th) if p >= t] for row in P]
        return [self.classes[i] for i in P.argmax(1)]

    def encode_text(self, texts, batch_size: int = 64) -> np.ndarray:
        spec = self.spec.get("text_encoder")
        if not spec:
            raise ValueError("this export has no text encoder")
        if self._text is None:
            from transformers import AutoTokenizer

            self._text = (AutoTokenizer.from_pretrained(str(self.folder / spec["tokenizer"])),
                          _session(self.folder / spec["file"], self.threads))
        tok, sess = self._text
        out = []
        for i in range(0, len(texts), batch_size):
            t = tok(list(texts[i : i + batch_size]), padding=True, truncation=True,
                    max_length=spec.get("max_length", 256), return_tensors="np")
            out.append(sess.run(["embedding"], {"input_ids": t["input_ids"].astype(np.int64),
                                                "attention_mask": t["attention_mask"].astype(np.int64)})[0])
        return np.concatenate(out)
