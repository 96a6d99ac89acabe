"""Where a model's input lies on the image it was cut from."""
from __future__ import annotations


def view_box(size: tuple[int, int], cfg) -> tuple[float, float, float, float]:
    """The box (left, top, right, bottom) of an image of ``size`` that the model input covers,
    in original pixels (mirrors :func:`wordsight.encoders.preprocess.resize_and_crop`)."""
    w, h = size
    if cfg.resize_mode == "exact":
        return (0.0, 0.0, float(w), float(h))
    scale = cfg.resize_size / min(w, h)
    nw, nh = max(cfg.input_size, round(w * scale)), max(cfg.input_size, round(h * scale))
    left, top = (nw - cfg.input_size) // 2, (nh - cfg.input_size) // 2
    sx, sy = nw / w, nh / h
    return (left / sx, top / sy, (left + cfg.input_size) / sx, (top + cfg.input_size) / sy)
