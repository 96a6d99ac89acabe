"""Decode image bytes into RGB PIL images, robustly.

Every failure becomes an :class:`ImageError` whose message says what was wrong; callers report it
with the file name and go on with the other images.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Images above this many pixels are refused (decompression bombs). Configurable per call.
DEFAULT_MAX_PIXELS = 89_478_485  # PIL's own default warning threshold
# A side and an aspect-ratio limit, read from the header like the pixel limit: preprocessing scales
# the shorter side up to the model's resize size (256 px), so the work grows with the aspect ratio,
# not the pixel count. A 20000x1 PNG of 139 bytes took 5.9 s and 2.8 GB in a server before these
# limits. At 50:1 the resized image is at most 12,800 x 256 px (10 MB of RGB), and long screenshots
# and panoramas (2:1 to 20:1) still pass.
DEFAULT_MAX_SIDE = 30_000
DEFAULT_MAX_ASPECT = 50.0
# The largest image file read from disk (a regular file; FIFOs and devices are refused before reading).
DEFAULT_MAX_FILE_BYTES = 256 << 20
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".jfif",
                    ".ppm", ".pgm", ".pbm", ".pnm"}

ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageError(ValueError):
    """An input could not be turned into an image; ``str(err)`` is the reason."""


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite transparent images onto white, the way a viewer shows them."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _rescale_high_depth(img: Image.Image, window: tuple[float, float] | None = None) -> Image.Image:
    """16-bit, 32-bit and float images: through ``window`` onto 0..255 (:mod:`.window`: the
    0.5th..99.5th percentile by default, clipped outside, never cut to the low byte)."""
    from .window import WindowError, to_uint8

    try:
        return Image.fromarray(to_uint8(np.asarray(img), window), "L").convert("RGB")
    except WindowError as e:
        raise ImageError(str(e)) from None


def to_rgb(img: Image.Image, window: tuple[float, float] | None = None) -> Image.Image:
    """Convert any PIL mode to RGB correctly (alpha on white, high bit depth through ``window``)."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        return _flatten_alpha(img)
    if mode in ("I", "F") or mode.startswith("I;"):
        return _rescale_high_depth(img, window)
    return img.convert("RGB")


def check_size(w: int, h: int, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int = DEFAULT_MAX_SIDE,
               max_aspect: float = DEFAULT_MAX_ASPECT) -> None:
    """Refuse a header's size before anything is decoded; the message says which limit."""
    if w == 0 or h == 0:
        raise ImageError(f"image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ImageError(f"too many pixels: {w}x{h} exceeds the limit of {max_pixels:,}")
    if max(w, h) > max_side:
        raise ImageError(f"too large: {w}x{h} has a side longer than the limit of {max_side:,} pixels")
    if max(w, h) / min(w, h) > max_aspect:
        raise ImageError(f"too elongated: {w}x{h} has an aspect ratio above the limit of {max_aspect:g}:1")


def _check_jpeg_scans(data: bytes, pixels: int) -> None:
    from .jpeg_scans import check_scans

    try:
        check_scans(data, pixels)
    except ValueError as e:
        raise ImageError(str(e)) from None


def decode_image(
    data: bytes,
    *,
    draft_size: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int = DEFAULT_MAX_SIDE,
    max_aspect: float = DEFAULT_MAX_ASPECT,
    window: tuple[float, float] | None = None,
) -> Image.Image:
    """Decode ``data`` into an RGB image with EXIF orientation applied.

    ``draft_size``: for JPEGs, let the decoder scale down by DCT (1/2, 1/4, 1/8) while both sides
    stay at least this large: big photos decode several times faster at no cost to a model whose
    input is smaller. GIFs give their first frame. ``window``: the (min, max) of a 16-bit or
    float image mapped to 0..255 (None: its percentile window, :mod:`.window`).
    """
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            check_size(w, h, max_pixels, max_side, max_aspect)
            if img.format in ("JPEG", "MPO"):
                _check_jpeg_scans(data, w * h)
            if draft_size and img.format == "JPEG":
                img.draft("RGB", (draft_size, draft_size))
            img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb(img, window)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not a recognised image format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"decompression bomb: {e}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as e:
        reason = str(e) or type(e).__name__
        if "truncated" in reason or isinstance(e, EOFError):
            reason = f"truncated or corrupt image data ({reason})"
        raise ImageError(f"cannot decode image: {reason}") from None


def read_image(path, **kwargs) -> Image.Image:
    """Read and decode a file; errors name the file and the problem."""
    from .safe_files import UnsafeFileError, read_regular

    try:
        data = read_regular(path, DEFAULT_MAX_FILE_BYTES)
    except UnsafeFileError as e:
        raise ImageError(str(e)) from None
    try:
        return decode_image(data, **kwargs)
    except ImageError as e:
        raise ImageError(f"{path}: {e}") from None
