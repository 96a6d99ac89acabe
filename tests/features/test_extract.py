import os
import re
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from wordsight.features import FeatureCache, extract_features
from wordsight.io.sources import Sample


def _png(path, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(path)


@pytest.fixture
def messy_folder(tmp_path):
    """Good images beside every kind of bad input, in a class-per-folder tree."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    for i in range(5):
        _png(good / f"ok_{i}.png", i)
    Image.new("RGB", (30, 20), "red").save(good / "ünïcode ok.jpg")
    Image.new("RGBA", (16, 16), (0, 0, 0, 0)).save(good / "transparent.png")
    _png(good / ".hidden.png", 99)  # ignored, neither embedded nor reported
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "text.png").write_text("I am not a picture")
    jpeg = good / "ok_0.png"
    data = Image.open(jpeg).convert("RGB")
    data.save(bad / "whole.jpg", quality=95)
    raw = (bad / "whole.jpg").read_bytes()
    (bad / "truncated.jpg").write_bytes(raw[: len(raw) // 2])
    (bad / "whole.jpg").unlink()
    (bad / "corrupt.webp").write_bytes(b"RIFF\x10\x00\x00\x00WEBPVP8 " + os.urandom(40))
    Image.new("L", (2000, 1500)).save(bad / "bomb.png")
    (bad / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    return tmp_path


def test_bad_inputs_reported_and_skipped(messy_folder, tmp_path):
    fs = extract_features(messy_folder, cache=tmp_path / "c", max_pixels=1_000_000, quiet=True)
    names = sorted(os.path.basename(p) for p in fs.paths)
    assert names == ["ok_0.png", "ok_1.png", "ok_2.png", "ok_3.png", "ok_4.png", "transparent.png", "ünïcode ok.jpg"]
    assert fs.embeddings.shape == (7, 1280) and np.isfinite(fs.embeddings).all()
    assert set(fs.labels) == {"good"}
    reasons = {os.path.basename(p.path): p.reason for p in fs.failures}
    assert set(reasons) == {"empty.jpg", "text.png", "truncated.jpg", "corrupt.webp", "bomb.png", "dangling.png"}
    assert "empty" in reasons["empty.jpg"]
    assert "not a recognised image format" in reasons["text.png"]
    assert "truncated" in reasons["truncated.jpg"]
    assert "too many pixels" in reasons["bomb.png"]
    assert reasons["dangling.png"] == "dangling link"


def test_unreadable_entries_in_a_list(tmp_path):
    (tmp_path / "folder.jpg").mkdir()
    _png(tmp_path / "fine.png", 1)
    samples = [Sample(str(tmp_path / "folder.jpg")), Sample(str(tmp_path / "missing.png")),
               Sample(str(tmp_path / "fine.png"))]
    fs = extract_features(samples, cache=False, quiet=True)
    assert fs.paths == [str(tmp_path / "fine.png")]
    assert [p.reason for p in fs.failures] == ["is a folder, not a file", "file not found"]


def test_cache_is_content_addressed(tmp_path):
    for i in range(6):
        _png(tmp_path / f"{i}.png", i)
    cache = FeatureCache(tmp_path / "cache")
    first = extract_features(tmp_path, cache=cache, quiet=True)
    assert (first.computed, first.cached) == (6, 0)
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "same.png").write_bytes((tmp_path / "0.png").read_bytes())
    second = extract_features(tmp_path, cache=cache, quiet=True)
    assert (second.computed, second.cached) == (0, 7)  # a renamed copy is not recomputed
    by_path = dict(zip(second.paths, second.embeddings))
    np.testing.assert_array_equal(np.stack([by_path[p] for p in first.paths]), first.embeddings)
    np.testing.assert_array_equal(by_path[str(tmp_path / "copy" / "same.png")], first.embeddings[0])
    third = extract_features(tmp_path, model="mobilenetv2", cache=cache, quiet=True)
    assert third.computed == 6  # another model, other keys (the copy shares content with 0.png)
    flipped = extract_features(first.samples, cache=cache, view=lambda im: im.transpose(0), view_key="flip", quiet=True)
    assert flipped.computed == 6 and not np.allclose(flipped.embeddings, first.embeddings)


def _run_embed(folder, out, cache, *extra):
    cmd = [sys.executable, "-m", "wordsight", "embed", str(folder), "--out", str(out), "--batch-size", "8", *extra]
    cmd += ["--no-cache"] if cache is None else ["--cache-dir", str(cache)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_then_resume_computes_only_the_rest(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(160):
        _png(folder / f"{i:03d}.png", i)
    cache = tmp_path / "cache"
    proc = _run_embed(folder, tmp_path / "a.parquet", cache)
    done = 0
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        db = cache / "features.sqlite"
        if db.exists():
            try:
                done = sqlite3.connect(db).execute("SELECT COUNT(*) FROM features").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
            if done >= 32:
                break
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no cleanup code runs
    proc.wait()
    assert 0 < done < 160, "the run finished before it could be killed; make the folder bigger"
    assert not (tmp_path / "a.parquet").exists()  # output appears only when complete

    resumed = _run_embed(folder, tmp_path / "a.parquet", cache)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    computed = int(re.search(r"(\d+) computed", err).group(1))
    assert done <= 160 - computed  # what finished before the kill was not recomputed
    clean = extract_features(folder, cache=False, batch_size=8, quiet=True)
    resumed_table = pq.read_table(tmp_path / "a.parquet")
    assert resumed_table.column("path").to_pylist() == clean.paths
    np.testing.assert_allclose(np.stack(resumed_table.column("embedding").to_pylist()), clean.embeddings, atol=1e-4)


def test_embed_cli_output_and_exit_codes(tmp_path, cat_image):
    folder = tmp_path / "data"
    (folder / "cat").mkdir(parents=True)
    cat_image.save(folder / "cat" / "chelsea.jpg")
    (folder / "cat" / "broken.jpg").write_bytes(b"\x00\x01")
    out = tmp_path / "f.parquet"
    p = _run_embed(folder, out, tmp_path / "c", "--quiet")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0
    assert "broken.jpg: not a recognised image format" in err
    rows = {os.path.basename(r["path"]): r for r in pq.read_table(out).to_pylist()}
    assert rows["chelsea.jpg"]["status"] == "ok" and rows["chelsea.jpg"]["label"] == "cat"
    assert len(rows["chelsea.jpg"]["embedding"]) == 1280
    assert any("cat" in n or "Mau" in n for n in rows["chelsea.jpg"]["imagenet_top5"])
    assert rows["broken.jpg"]["status"].startswith("error: ") and rows["broken.jpg"]["embedding"] is None
    strict = _run_embed(folder, out, tmp_path / "c", "--quiet", "--strict")
    assert strict.wait(timeout=120) == 1
