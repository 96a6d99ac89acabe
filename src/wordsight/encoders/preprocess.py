"""Turn a decoded RGB image into a model input, as the encoder's config says."""
from __future__ import annotations

import numpy as np
from PIL import Image

from .config import EncoderConfig

_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


def resize_and_crop(img: Image.Image, cfg: EncoderConfig) -> Image.Image:
    """Resize and crop to the model's square input as its config says."""
    resample = _RESAMPLE[cfg.interpolation]
    if cfg.resize_mode == "exact":
        return img.resize((cfg.input_size, cfg.input_size), resample)
    w, h = img.size
    scale = cfg.resize_size / min(w, h)
    nw, nh = max(cfg.input_size, round(w * scale)), max(cfg.input_size, round(h * scale))
    # Reducing in steps first is much faster for big images and visually the same.
    img = img.resize((nw, nh), resample, reducing_gap=3.0 if min(w, h) > 2 * cfg.resize_size else None)
    left, top = (nw - cfg.input_size) // 2, (nh - cfg.input_size) // 2
    return img.crop((left, top, left + cfg.input_size, top + cfg.input_size))


def to_tensor_array(img: Image.Image, cfg: EncoderConfig) -> np.ndarray:
    """RGB uint8 image -> normalised float32 array, channels first (3, H, W)."""
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(cfg.mean, np.float32)) / np.asarray(cfg.std, np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def preprocess(img: Image.Image, cfg: EncoderConfig) -> np.ndarray:
    return to_tensor_array(resize_and_crop(img, cfg), cfg)
