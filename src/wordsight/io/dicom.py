"""DICOM files through pydicom: listed from the header, decoded a frame at a time, pixels as the viewer shows them.

Display pipeline (DICOM PS3.4 N.2, in this order): the modality LUT (RescaleSlope/Intercept or
a Modality LUT Sequence, pydicom's ``apply_modality_lut``); then the window: ``--window min,max``
when given (in modality units, e.g. Hounsfield units for CT), else the file's first
WindowCenter/WindowWidth as ``center +- width/2``, else its VOI LUT Sequence (pydicom's
``apply_voi_lut``), else the percentile window of :mod:`.window`; MONOCHROME1 (0 = white) is
inverted; RGB, YBR (converted to RGB by pydicom) and palette colour (its LUT applied) give colour.
Compressed transfer syntaxes decode with whatever plugin is installed (pylibjpeg, OpenJPEG, ...);
one that nothing installed decodes is refused when listed, with the syntax's name.

Privacy: nothing here returns or reports a tag value other than pixel-geometry and display tags
(rows, columns, frames, photometric interpretation, transfer syntax, rescale, window): no
patient, study, institution or date. Error messages name the file (by the caller) and the
technical reason only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .media_ref import MediaError, open_media
from .window import to_rgb_array, to_uint8

DICOM_EXTENSIONS = {".dcm", ".dicom", ".dic"}
DEFAULT_MAX_DICOM_BYTES = 2 << 30
SUPPORTED_PHOTOMETRIC = {"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT",
                         "PALETTE COLOR", "YBR_PARTIAL_420"}


@dataclass(frozen=True)
class DicomInfo:
    frames: int
    width: int
    height: int


def _pydicom():
    try:
        import pydicom
    except ImportError:
        raise MediaError("reading DICOM needs pydicom: pip install 'wordsight[media]'") from None
    _quiet(pydicom)
    return pydicom


def _quiet(pydicom) -> None:
    """pydicom's validation warnings and log lines quote tag values (a patient's name in a badly
    formed PN element): wordsight never lets them out. Set once, for the process."""
    import logging

    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)


def _header(f):
    """The dataset with the pixel data left unread (deferred): header tags only."""
    pydicom = _pydicom()
    try:
        return pydicom.dcmread(f, defer_size=256, force=True)
    except Exception as e:  # pydicom raises many kinds on a broken header
        raise MediaError(f"not a readable DICOM file ({type(e).__name__}: {_first_line(e)})") from None


def _first_line(e) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def _syntax(ds):
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid is None:
        from pydicom.uid import ImplicitVRLittleEndian

        uid = ImplicitVRLittleEndian
    return uid


def check_header(ds) -> DicomInfo:
    """Frames and size of a dataset that has pixel data we can decode, else the reason."""
    from pydicom.pixels import get_decoder

    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise MediaError("no pixel data (a DICOM file without an image: a report, a structured document, ...)")
    uid = _syntax(ds)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise MediaError(f"transfer syntax {uid.name} ({uid}) is not an image syntax pydicom decodes") from None
    if not decoder.is_available:
        raise MediaError(f"compressed transfer syntax {uid.name} ({uid}) that no installed plugin decodes "
                         f"(pydicom's decoders for it: {', '.join(decoder.missing_dependencies) or 'none'})")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if photometric not in SUPPORTED_PHOTOMETRIC:
        raise MediaError(f"photometric interpretation {photometric} is not supported")
    try:
        rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError) as e:
        raise MediaError(f"unreadable image size or frame count in the header ({_first_line(e)})") from None
    if frames < 1:
        raise MediaError(f"the header gives {frames} frames")
    return DicomInfo(frames, cols, rows)


def probe(source) -> DicomInfo:
    with open_media(source, DEFAULT_MAX_DICOM_BYTES) as f:
        return check_header(_header(f))


def _window(ds, arr, window):
    if window is not None:
        return to_uint8(arr, window)
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None:
        c = float(center[0] if _multi(center) else center)
        w = float(width[0] if _multi(width) else width)
        if w > 0:
            return to_uint8(arr, (c - w / 2, c + w / 2))
    if "VOILUTSequence" in ds:
        from pydicom.pixels import apply_voi_lut

        return to_uint8(apply_voi_lut(arr, ds))
    return to_uint8(arr)


def _multi(value) -> bool:
    return hasattr(value, "__len__") and not isinstance(value, (str, bytes))


def display_pixels(ds, arr: np.ndarray, window=None) -> np.ndarray:
    """One frame's stored values -> H x W x 3 uint8 as a viewer shows it (module docstring)."""
    from pydicom.pixels import apply_color_lut, apply_modality_lut

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if photometric == "PALETTE COLOR":
        return to_rgb_array(apply_color_lut(arr, ds), window)
    if arr.ndim == 3 and arr.shape[-1] == 3:  # RGB (YBR already converted by pydicom)
        return to_rgb_array(arr, window)
    grey = _window(ds, apply_modality_lut(arr, ds).astype(np.float64), window)
    if photometric == "MONOCHROME1":
        grey = 255 - grey
    return to_rgb_array(grey)


# Transfer syntaxes whose frames are ITU T.81 JPEG bitstreams: a progressive frame of thousands of scans
# costs as much to decode as such a .jpg file, so its scans are counted first, as for a .jpg
# (:mod:`.jpeg_scans`). JPEG-LS and JPEG 2000 are other bitstreams (no scans to repeat).
JPEG_SYNTAXES = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                 "1.2.840.10008.1.2.4.70")


def _check_jpeg_frame(f, ds, info: DicomInfo, frame: int) -> None:
    """Refuse an encapsulated JPEG frame of ``f`` of more scans than its size allows, before decoding it."""
    if str(_syntax(ds)) not in JPEG_SYNTAXES:
        return
    from pydicom.encaps import get_frame

    from .jpeg_scans import check_scans

    try:
        f.seek(0)  # the compressed pixel data, read whole (the file's size is bounded by open_media)
        pixels = _pydicom().dcmread(f, force=True, specific_tags=["PixelData"]).PixelData
        data = get_frame(pixels, frame, number_of_frames=info.frames)
    except Exception as e:  # a broken offset table or fragment: the decoder would fail the same way
        raise MediaError(f"cannot find frame {frame} in the pixel data ({type(e).__name__}: {_first_line(e)})") from None
    try:
        check_scans(data, info.width * info.height)
    except ValueError as e:
        raise MediaError(f"frame {frame}: {e}") from None


def decode_frame(source, frame: int = 0, window=None) -> np.ndarray:
    """Frame ``frame`` of a DICOM file (path or bytes) as H x W x 3 uint8; only that frame is decoded."""
    from pydicom.pixels import pixel_array

    with open_media(source, DEFAULT_MAX_DICOM_BYTES) as f:
        ds = _header(f)
        info = check_header(ds)
        if not 0 <= frame < info.frames:
            raise MediaError(f"frame {frame} does not exist (the file has {info.frames} frame(s))")
        _check_jpeg_frame(f, ds, info, frame)
        f.seek(0)
        try:
            arr = pixel_array(f, index=frame if info.frames > 1 else None)
        except Exception as e:  # a decoder's failure on broken pixel data
            raise MediaError(f"cannot decode the pixel data ({type(e).__name__}: {_first_line(e)})") from None
    try:
        return display_pixels(ds, arr, window)
    except MediaError:
        raise
    except Exception as e:
        raise MediaError(f"cannot display the pixel data ({type(e).__name__}: {_first_line(e)})") from None
