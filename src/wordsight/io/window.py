"""16-bit, 32-bit and float pixels to the encoders' 8-bit input, by one documented rule.

The rule (docs/manual.md, "16-bit and scientific images"): a window ``(lo, hi)`` is mapped linearly
onto 0..255; values below ``lo`` become 0 and above ``hi`` 255 (clipped, never wrapped: a 16-bit
value is never cut to its low byte). The default window is the 0.5th to 99.5th percentile of the
image's finite values, so that one hot pixel does not darken the rest; ``--window min,max`` sets it
(the same for every image, e.g. a detector's known range). NaN becomes ``lo``; an image whose window
is empty (every value equal) is black.
"""
from __future__ import annotations

import numpy as np

PERCENTILES = (0.5, 99.5)


class WindowError(ValueError):
    """The pixels cannot be windowed (no pixels)."""


def auto_window(arr: np.ndarray) -> tuple[float, float]:
    """The default window: the ``PERCENTILES`` of the finite values (0, 0 when there are none)."""
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return 0.0, 0.0
    lo, hi = np.percentile(finite, PERCENTILES)
    return float(lo), float(hi)


def to_uint8(arr: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """``arr`` (any numeric dtype, H x W or H x W x C) as uint8 through ``window`` (None: :func:`auto_window`)."""
    arr = np.asarray(arr, dtype=np.float64)
    if arr.size == 0:
        raise WindowError("image has no pixels")
    lo, hi = window if window is not None else auto_window(arr)
    if not hi > lo:
        return np.zeros(arr.shape, np.uint8)
    scaled = (np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def to_rgb_array(arr: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """H x W x 3 uint8 from grey (H x W), grey+alpha, RGB or RGBA pixels of any depth (8-bit passes
    through unchanged unless a window is set)."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        arr = arr[..., : arr.shape[2] - 1]  # alpha dropped: scientific images carry no transparency to show
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise WindowError(f"pixel array of shape {arr.shape} is not an image (H x W or H x W x 3)")
    out = arr if arr.dtype == np.uint8 and window is None else to_uint8(arr, window)
    return np.repeat(out[..., None], 3, axis=2) if out.ndim == 2 else out
