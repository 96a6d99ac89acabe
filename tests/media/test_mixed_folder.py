"""A folder mixing JPEG, a video, DICOM and 16-bit TIFF: embedded, fitted, predicted and served, and
the served frames equal the CLI's (one computation, many views)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from .conftest import photo, write_dicom, write_video


def _grey16(name: str) -> np.ndarray:
    return (np.asarray(Image.fromarray(photo(name, 96)).convert("L"), np.uint16) * 200 + 500).astype(np.uint16)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    import tifffile

    root = tmp_path_factory.mktemp("mixed")
    for label, name in (("cat", "chelsea"), ("coffee", "coffee")):
        (root / label).mkdir()
        img = photo(name, 96)
        Image.fromarray(img).save(root / label / "a.jpg", quality=92)
        Image.fromarray(np.roll(img, 9, axis=1)).save(root / label / "b.jpg", quality=92)
        write_video(root / label / "clip.mp4", [(photo(name), 20)], fps=10)  # 2 s: frames 0 and 10
        write_dicom(root / label / "scan.dcm", _grey16(name))
        tifffile.imwrite(root / label / "micro.tif", _grey16(name)[::-1])
    video = write_video(tmp_path_factory.mktemp("test") / "mix.mp4",
                        [(photo("chelsea"), 10), (photo("coffee"), 10)], fps=10)
    return root, video


def test_embed_fit_predict_and_serve(mixed, tmp_path, capsys):
    import httpx

    from wordsight.cli import main
    from wordsight.serve import BackgroundServer, Limits, ServeSettings

    root, video = mixed
    cache = str(tmp_path / "cache")
    assert main(["embed", str(root), "--out", str(tmp_path / "e.parquet"), "--cache-dir", cache, "--quiet"]) == 0
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "e.parquet")
    paths = [p if f is None else f"{p}#frame={f}" for p, f in zip(table.column("path").to_pylist(),
                                                                 table.column("frame").to_pylist())]
    assert sorted(t for t in table.column("time_s").to_pylist() if t is not None) == [0.0, 0.0, 1.0, 1.0]
    # per class: 2 JPEGs, 2 video frames (1 a second), 1 DICOM, 1 TIFF
    assert len(paths) == 12 and sum(".mp4#frame=" in p for p in paths) == 4 and sum(".dcm#frame=0" in p for p in paths) == 2
    model = tmp_path / "model"
    assert main(["fit", str(root), "--out", str(model), "--fusion", "image", "--C", "1", "--cache-dir", cache,
                 "--quiet"]) == 0
    out = tmp_path / "p.jsonl"
    capsys.readouterr()
    assert main(["predict", str(model), str(video), "--fps", "5", "--out", str(out), "--no-describe",
                 "--cache-dir", cache, "--quiet"]) == 0
    summary = capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["path"], r["frame"], r["time_s"]) for r in rows] == [(str(video), i, i / 10) for i in range(0, 20, 2)]
    assert [r["predicted"] for r in rows] == ["cat"] * 5 + ["coffee"] * 5
    assert "0.00 s -     1.00 s  cat" in summary and "1.00 s -     2.00 s  coffee" in summary
    assert "share of time: cat 50.0%, coffee 50.0%" in summary

    limits = Limits(max_upload_bytes=2_000_000, max_video_frames=20, timeout_s=120)
    with BackgroundServer(ServeSettings(model_dir=str(model), limits=limits)) as s, \
            httpx.Client(base_url=s.url, timeout=120) as c:
        files = [("files", ("mix.mp4", video.read_bytes())), ("files", ("scan.dcm", (root / "cat/scan.dcm").read_bytes())),
                 ("files", ("micro.tif", (root / "coffee/micro.tif").read_bytes()))]
        r = c.post("/v1/predict", files=files, data={"top_k": "2"})
        assert r.status_code == 200, r.text
        res = r.json()["results"]
        r = c.post("/v1/explain", files=files[:2])  # a heatmap per frame, as the predictions
        assert r.status_code == 200, r.text
        explained = r.json()["results"]
    assert [(x["file"], x["evidence"].get("frame"), x["evidence"].get("time_s")) for x in explained] == \
        [("mix.mp4", 0, 0.0), ("mix.mp4", 10, 1.0), ("scan.dcm", 0, None)]
    for x, p in zip(explained, res):
        assert x["evidence"]["predicted"] == p["predicted"]
        assert x["evidence"]["top_k"][0][1] == pytest.approx(p["top_k"][0]["probability"], abs=1e-5)
    assert [(x["file"], x.get("frame"), x.get("time_s")) for x in res] == \
        [("mix.mp4", i, i / 10) for i in (0, 10)] + [("scan.dcm", 0, None), ("micro.tif", None, None)]
    assert [x["predicted"] for x in res] == ["cat", "coffee", "cat", "coffee"]
    # the served frames are the CLI's frames at 1 a second: the same probabilities
    assert main(["predict", str(model), str(video), "--out", str(tmp_path / "q.jsonl"), "--no-describe",
                 "--cache-dir", cache, "--quiet"]) == 0
    cli = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text().splitlines()]
    for served, row in zip(res[:2], cli):
        assert served["frame"] == row["frame"]
        assert served["top_k"][0]["probability"] == pytest.approx(row["top_k"][0]["probability"], abs=1e-5)


def test_a_long_video_upload_is_refused_from_its_header(mixed):
    import httpx

    from wordsight.serve import BackgroundServer, Limits, ServeSettings

    _, video = mixed
    with BackgroundServer(ServeSettings(model_dir=None, limits=Limits(max_video_seconds=1.5))) as s, \
            httpx.Client(base_url=s.url, timeout=60) as c:
        r = c.post("/v1/zeroshot", files=[("files", ("mix.mp4", video.read_bytes()))], data={"classes": "cat,coffee"})
    assert r.status_code == 413, r.text
    assert "mix.mp4: 2.0 s of video, longer than the limit of 2 s" in r.text or "longer than the limit" in r.text
