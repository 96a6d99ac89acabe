"""--engine ray on videos and DICOM series: frames sharded across actors, rows in order, equal to local."""
from __future__ import annotations

import json

import numpy as np
import pytest

from wordsight.features import extract_features
from wordsight.features.engines import ATOL, RTOL
from wordsight.io.media_options import MediaOptions
from wordsight.io.sources import open_source

pytest.importorskip("ray")
pytest.importorskip("av")


@pytest.fixture(scope="module")
def media_folder(tmp_path_factory):
    import av
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
    from skimage import data

    root = tmp_path_factory.mktemp("ray-media")
    with av.open(str(root / "v.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        for img in (data.chelsea()[:64, :64], data.coffee()[:64, :64]):
            for _ in range(10):
                for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                    c.mux(p)
        for p in s.encode():
            c.mux(p)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(root / "series.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 48, 48, 3
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation = 15, 0
    ds.PixelData = (np.arange(3 * 48 * 48, dtype=np.uint16) * 7).tobytes()
    ds.save_as(str(root / "series.dcm"), enforce_file_format=True)
    return root


def test_ray_equals_local_on_frames(ray_local, media_folder):
    src = open_source(media_folder, media=MediaOptions(fps=5))
    assert len(src.samples) == 13  # 10 video frames (2 s at 5 a second) + 3 DICOM frames
    local = extract_features(src, "efficientnet-lite0", cache=False, quiet=True)
    remote = extract_features(src, "efficientnet-lite0", engine="ray", cache=False, quiet=True, concurrency=2,
                              batch_size=4)
    assert remote.paths == local.paths and [s.path.frame for s in remote.samples] == [0, 1, 2] + list(range(0, 20, 2))
    np.testing.assert_allclose(remote.embeddings, local.embeddings, rtol=RTOL, atol=ATOL)


def test_ray_predict_cli_equals_local_on_frames(ray_local, media_folder, photo_folder, tmp_path):
    from wordsight.cli import main
    from wordsight.estimator import Classifier

    Classifier(fusion="image").fit(photo_folder).save(tmp_path / "model")
    rows = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.jsonl"
        assert main(["predict", str(tmp_path / "model"), str(media_folder), "--engine", engine, "--out", str(out),
                     "--no-describe", "--no-cache", "--quiet", "--fps", "5"]) == 0
        rows[engine] = [json.loads(line) for line in out.read_text().splitlines()]
    key = [(r["path"], r["frame"], r["time_s"], r["predicted"]) for r in rows["local"]]
    assert key == [(r["path"], r["frame"], r["time_s"], r["predicted"]) for r in rows["ray"]]
    assert len(key) == 13 and key[3][1:3] == (0, 0.0) and key[4][1:3] == (2, 0.2)
    for a, b in zip(rows["local"], rows["ray"]):
        assert a["top_k"][0]["probability"] == pytest.approx(b["top_k"][0]["probability"], abs=1e-5)
