"""Exported encoders cached on disk, exported once per (model fingerprint, weights).

Layout: ``<cache dir>/onnx/<model>-<key>/`` with ``image-fp32.onnx``, ``image-int8.onnx`` and
``gate-onnx-int8.json`` (the gate's figures, also kept when refused so that a refusal is
instant the next time). The cache dir is the feature cache's (``$WORDSIGHT_CACHE``,
``~/.cache/wordsight``).

int8 (ONNX Runtime: static QDQ, per-channel weights, calibrated on photos) is used only when it
passes the quality gate (:mod:`.quality_gate`, run by :mod:`.precisions`); otherwise
:class:`QuantizationRefused` says every measured figure.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

from ..cache import default_cache_dir

# scikit-image's sample photos, split so that calibration and held-out images never share a photo.
CALIBRATION_PHOTOS = ("astronaut", "coffee", "hubble_deep_field", "camera", "grass", "brick", "clock", "cell")
HOLDOUT_PHOTOS = ("chelsea", "rocket", "immunohistochemistry", "coins", "moon", "gravel", "colorwheel",
                  "retina", "page", "text")


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


def quantize_ort(encoder, fp32: Path, path: Path, n_calibration: int = 32) -> Path:
    """ONNX Runtime static int8 (QDQ, per-channel weights), calibrated on crops of photos."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

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
    return path
