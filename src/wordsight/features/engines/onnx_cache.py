"""Exported encoders cached on disk, exported once per (model fingerprint, weights).

Layout: ``<cache dir>/onnx/<model>-<key>/`` with ``image-fp32.onnx``, ``image-int8.onnx`` and
``int8.json`` (the measured agreement of the int8 model with fp32, also kept when refused so that
a refusal is instant the next time). The cache dir is the feature cache's (``$WORDSIGHT_CACHE``,
``~/.cache/wordsight``).

int8: static quantisation (QDQ, per-channel weights, calibrated on photos) is used only when its
top-1 agrees with fp32 on at least ``MIN_AGREEMENT`` of a held-out image set, otherwise
:class:`QuantizationRefused` says the measured agreement. Top-1 is the ImageNet class for
encoders with that head, else the nearest fp32 embedding (does the int8 vector of image i find
image i among the fp32 vectors of the held-out set).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from ..cache import default_cache_dir

MIN_AGREEMENT = 0.99
# scikit-image's sample photos, split so that calibration and held-out images never share a photo.
CALIBRATION_PHOTOS = ("astronaut", "coffee", "hubble_deep_field", "camera", "grass", "brick", "clock", "cell")
HOLDOUT_PHOTOS = ("chelsea", "rocket", "immunohistochemistry", "coins", "moon", "gravel", "colorwheel",
                  "retina", "page", "text")


class QuantizationRefused(RuntimeError):
    """int8 top-1 agreement with fp32 was below the threshold; ``agreement`` holds the measure."""

    def __init__(self, message: str, agreement: float, n: int):
        super().__init__(message)
        self.agreement, self.n = agreement, n


def model_dir(encoder, cache_dir=None) -> Path:
    from ...encoders.onnx import weights_digest

    digest = getattr(encoder, "_wordsight_weights_digest", None)
    if digest is None:
        digest = weights_digest(encoder)
        encoder._wordsight_weights_digest = digest
    fp = encoder.config.fingerprint
    key = hashlib.sha256(f"{fp}|{digest}".encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", encoder.config.name)[-60:]
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    return root / "onnx" / f"{safe}-{key}"


def fp32_model(encoder, cache_dir=None) -> Path:
    """Path of the fp32 ONNX export of ``encoder``, exporting it the first time."""
    from ...encoders.onnx import export_image_encoder

    path = model_dir(encoder, cache_dir) / "image-fp32.onnx"
    if not path.exists():
        export_image_encoder(encoder, path)
    return path


def reference_images(photos, n: int, cfg, seed: int) -> np.ndarray:
    """``n`` preprocessed images: random crops, flips and exposure changes of ``photos``."""
    from PIL import Image
    from skimage import data

    from ...encoders.preprocess import preprocess

    rng = np.random.default_rng(seed)
    bases = []
    for name in photos:
        a = np.asarray(getattr(data, name)())
        a = a.astype(np.uint8) if a.dtype != bool else a.astype(np.uint8) * 255
        bases.append(Image.fromarray(a).convert("RGB"))
    out = []
    for i in range(n):
        img = bases[i % len(bases)]
        w, h = img.size
        side = int(min(w, h) * rng.uniform(0.35, 1.0))
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        crop = img.crop((x0, y0, x0 + side, y0 + side))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        arr = np.asarray(crop, np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-20, 20)
        crop = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        out.append(preprocess(crop, cfg))
    return np.stack(out)


def _run(session, x: np.ndarray, batch: int = 32) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    parts = [session.run(names, {session.get_inputs()[0].name: x[i : i + batch]}) for i in range(0, len(x), batch)]
    return {n: np.concatenate([p[j] for p in parts]) for j, n in enumerate(names)}


def top1_agreement(ref: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> float:
    if "logits" in ref:
        return float(np.mean(ref["logits"].argmax(1) == new["logits"].argmax(1)))
    a = ref["embedding"] / np.linalg.norm(ref["embedding"], axis=1, keepdims=True)
    b = new["embedding"] / np.linalg.norm(new["embedding"], axis=1, keepdims=True)
    return float(np.mean((b @ a.T).argmax(1) == np.arange(len(a))))


def _holdout_key(holdout) -> str:
    if holdout is None:
        return "builtin"
    return hashlib.sha256(np.ascontiguousarray(holdout).tobytes()).hexdigest()[:16]


def int8_model(encoder, cache_dir=None, *, holdout: np.ndarray | None = None, n_calibration: int = 32,
               n_holdout: int = 200, min_agreement: float = MIN_AGREEMENT, threads: int | None = None) -> Path:
    """Path of the int8 model when it passes the agreement gate; else ``QuantizationRefused``.

    ``holdout``: preprocessed images (N, 3, H, W) to measure agreement on (default: ``n_holdout``
    crops of photos that calibration never sees). The outcome is stored next to the model.
    """
    folder = model_dir(encoder, cache_dir)
    fp32 = fp32_model(encoder, cache_dir)
    path = folder / "image-int8.onnx"
    report_path = folder / "int8.json"
    key = _holdout_key(holdout)
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    if report.get("holdout") != key or report.get("n_holdout") != (len(holdout) if holdout is not None else n_holdout) \
            or (report.get("accepted") and not path.exists()):
        report = _quantize_and_measure(encoder, fp32, path, holdout, n_calibration, n_holdout, threads)
        report["holdout"] = key
        tmp = report_path.with_name(f".int8.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(report, indent=1))
        os.replace(tmp, report_path)
    agreement, n = report["agreement"], report["n_holdout"]
    if agreement < min_agreement:
        raise QuantizationRefused(
            f"int8 refused for {encoder.config.name}: its top-1 agrees with fp32 on {agreement:.1%} of "
            f"{n} held-out images, below the required {min_agreement:.0%}; use precision='fp32'",
            agreement, n)
    return path


def _quantize_and_measure(encoder, fp32: Path, path: Path, holdout, n_calibration, n_holdout, threads) -> dict:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ...encoders.onnx import session

    cfg = encoder.config
    calib = reference_images(CALIBRATION_PHOTOS, n_calibration, cfg, seed=0)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"pixel_values": calib[i : i + 8]} for i in range(0, len(calib), 8)])

        def get_next(self):
            return next(self.batches, None)

    pre = path.with_name(f".pre.{os.getpid()}.onnx")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        os.replace(tmp, path)
    finally:
        for p in (pre, tmp):
            p.unlink(missing_ok=True)
    x = holdout if holdout is not None else reference_images(HOLDOUT_PHOTOS, n_holdout, cfg, seed=1)
    ref = _run(session(fp32, threads), x)
    new = _run(session(path, threads), x)
    agreement = top1_agreement(ref, new)
    cos = np.sum(ref["embedding"] * new["embedding"], 1) / (
        np.linalg.norm(ref["embedding"], axis=1) * np.linalg.norm(new["embedding"], axis=1))
    return {"agreement": agreement, "n_holdout": int(len(x)), "accepted": agreement >= MIN_AGREEMENT,
            "embedding_cosine_mean": float(cos.mean()), "embedding_cosine_min": float(cos.min()),
            "calibration": f"{n_calibration} crops of scikit-image photos {', '.join(CALIBRATION_PHOTOS)}"}
