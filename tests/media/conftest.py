"""Tiny media files made in the tests: videos (PyAV, H.264) whose segments are known images, DICOM
files carrying patient names, 16-bit and float TIFFs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SIDE = 64


def photo(name: str, side: int = SIDE) -> np.ndarray:
    """A scikit-image photo (chelsea: cat, coffee, rocket, astronaut) at side x side, RGB uint8."""
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(getattr(data, name)()).convert("RGB").resize((side, side)))


def write_video(path: Path, segments, fps: int = 10, codec: str = "libx264", fmt: str | None = None) -> Path:
    """``segments``: [(H x W x 3 uint8, number of frames), ...] in order; returns ``path``."""
    import av

    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps)
        h, w = segments[0][0].shape[:2]
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for img, n in segments:
            for _ in range(n):
                for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    """3 s at 10 frames/s: cat (frames 0-9), coffee (10-19), cat (20-29)."""
    cat, coffee = photo("chelsea"), photo("coffee")
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", [(cat, 10), (coffee, 10), (cat, 10)])


def write_dicom(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2", **tags) -> Path:
    """A DICOM file (explicit VR little endian) with ``pixels`` and a patient who must never leak."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = tags.pop("syntax", ExplicitVRLittleEndian)
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = "Doe^Jane^Secret", "PATIENT-4711"
    ds.StudyDescription, ds.InstitutionName = "STUDY-OF-JANE", "St Privacy Hospital"
    frames = pixels.shape[0] if pixels.ndim == 3 and photometric.startswith("MONO") else 1
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = pixels.shape[-2], pixels.shape[-1]
    if photometric == "RGB":
        ds.Rows, ds.Columns = pixels.shape[0], pixels.shape[1]
        ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
    else:
        ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = ds.BitsStored = pixels.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    for k, v in tags.items():
        setattr(ds, k, v)
    if "no_pixels" not in tags:
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    else:
        del ds.no_pixels
    ds.save_as(str(path), enforce_file_format=True)
    return path
