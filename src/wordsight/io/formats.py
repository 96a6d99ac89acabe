"""What this installation can read, and which optional package adds the rest (``wordsight formats``)."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class FormatLine:
    kind: str
    readable: bool
    extensions: str
    detail: str
    adds: str = ""  # what to install when not readable (or to read more)


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _pil_line() -> FormatLine:
    from PIL import features

    from .images import IMAGE_EXTENSIONS

    extra = [name for name, mod in (("WebP", "webp"),) if not features.check(mod)]
    detail = "Pillow: 8-bit, 16-bit and float images (16-bit and float through the percentile window or --window)"
    return FormatLine("image", True, " ".join(sorted(IMAGE_EXTENSIONS)),
                      detail + (f"; missing codecs: {', '.join(extra)}" if extra else ""))


def _video_line() -> FormatLine:
    from .video import VIDEO_EXTENSIONS

    exts = " ".join(sorted(VIDEO_EXTENSIONS))
    if not _has("av"):
        return FormatLine("video", False, exts, "needs PyAV (FFmpeg in its wheels)", "pip install 'wordsight[media]'")
    import av

    decoders = [c for c in ("h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mjpeg", "prores") if c in av.codecs_available]
    return FormatLine("video", True, exts, f"PyAV {av.__version__}; decoders: {', '.join(decoders)}")


def _dicom_line() -> FormatLine:
    from .dicom import DICOM_EXTENSIONS

    exts = " ".join(sorted(DICOM_EXTENSIONS))
    if not _has("pydicom"):
        return FormatLine("dicom", False, exts, "needs pydicom", "pip install 'wordsight[media]'")
    import pydicom
    from pydicom.pixels import decoders
    from pydicom.pixels.decoders.base import Decoder

    can, cannot = [], []
    for name in dir(decoders):
        d = getattr(decoders, name)
        if isinstance(d, Decoder):
            (can if d.is_available else cannot).append(d.UID.name)
    detail = f"pydicom {pydicom.__version__}; {len(can)} transfer syntaxes decode"
    if cannot:
        detail += f"; not these {len(cannot)}: {', '.join(sorted(cannot))}"
    return FormatLine("dicom", True, exts, detail,
                      "pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle (or pyjpegls for "
                      "JPEG-LS)" if cannot else "")


def _tiff_line() -> FormatLine:
    from .tiff import TIFF_EXTENSIONS

    exts = " ".join(sorted(TIFF_EXTENSIONS))
    if not _has("tifffile"):
        return FormatLine("tiff pages", False, exts, "multi-page, float and 16-bit RGB TIFF need tifffile "
                          "(single-page TIFF reads with Pillow)", "pip install 'wordsight[media]'")
    import tifffile

    codecs = "imagecodecs present: every TIFF compression" if _has("imagecodecs") else \
        "uncompressed, LZW, deflate, packbits (JPEG/ZSTD/... compressed pages need imagecodecs)"
    return FormatLine("tiff pages", True, exts, f"tifffile {tifffile.__version__}; {codecs}",
                      "" if _has("imagecodecs") else "pip install imagecodecs")


def format_lines() -> list[FormatLine]:
    return [_pil_line(), _video_line(), _dicom_line(), _tiff_line()]
