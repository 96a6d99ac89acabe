"""Issue 14, CLI and file cases 7-13: hostile folders, names, manifests and caches, through the
real ``wordsight`` command (in process, under a time limit so that a hang fails instead of
blocking the suite)."""
from __future__ import annotations

import csv
import json
import os
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest

from wordsight.cli import main
from wordsight.io.sources import open_source

from .conftest import png, time_limit


def _images(folder, n=2, start=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (folder / f"img{i}.png").write_bytes(png(color=(40 * i % 256, 90, 200)))


def _embed(capsys, *args, limit=120):
    with time_limit(limit):
        code = main(["embed", *map(str, args), "--quiet"])
    out = capsys.readouterr()
    return code, out.err


def _rows(parquet):
    import pyarrow.parquet as pq

    return pq.read_table(parquet).to_pylist()


# ---------------------------------------------------------------- cases 7, 8: FIFO and device files
def test_case7_case8_fifo_and_device_are_refused_not_opened(tmp_path, capsys):
    d = tmp_path / "d"
    _images(d)
    os.mkfifo(d / "x.jpg")
    (d / "z.jpg").symlink_to("/dev/zero")
    code, err = _embed(capsys, d, "--out", tmp_path / "f.parquet", "--no-cache")
    assert code == 0  # some images embedded: exit 0 (docs/manual.md), the failures listed
    rows = {os.path.basename(r["path"]): r["status"] for r in _rows(tmp_path / "f.parquet")}
    assert rows["img0.png"] == rows["img1.png"] == "ok"
    assert rows["x.jpg"] == "error: is a FIFO (named pipe), not a regular file"
    assert rows["z.jpg"] == "error: is a character device, not a regular file"
    assert "x.jpg: is a FIFO" in err and "z.jpg: is a character device" in err
    code, _ = _embed(capsys, d, "--out", tmp_path / "g.parquet", "--no-cache", "--strict")
    assert code == 1


def test_case7_predict_does_not_block_on_a_fifo(model_dir, tmp_path, capsys):
    d = tmp_path / "p"
    _images(d, 1)
    os.mkfifo(d / "pipe.png")
    with time_limit(120):
        code = main(["predict", str(model_dir), str(d), "--no-describe", "--no-cache", "--quiet"])
    out = capsys.readouterr()
    assert code == 0 and "img0.png" in out.out and "pipe.png: is a FIFO" in out.err


def test_safe_open_rechecks_after_the_stat(tmp_path):
    """open_regular refuses what it actually opened, and never blocks on a FIFO (O_NONBLOCK)."""
    from wordsight.io.safe_files import UnsafeFileError, read_regular

    os.mkfifo(tmp_path / "p")
    with time_limit(10), pytest.raises(UnsafeFileError, match="FIFO"):
        read_regular(tmp_path / "p")
    (tmp_path / "big").write_bytes(b"x" * 101)
    with pytest.raises(UnsafeFileError, match="101 bytes, more than the limit of 100"):
        read_regular(tmp_path / "big", 100)
    with pytest.raises(UnsafeFileError, match="embedded null"):
        read_regular("a\0b")


# ---------------------------------------------------------------- case 9: folder link loops
def test_case9_folder_link_loop_lists_each_image_once(tmp_path, capsys):
    d = tmp_path / "d"
    _images(d, 1)  # d/img0.png: unlabelled (beside a class folder)
    _images(d / "sub", 1, start=1)
    (d / "sub" / "up").symlink_to("..")
    (d / "zalias").symlink_to("sub")  # a second name for the same folder (listed after sub)
    code, err = _embed(capsys, d, "--out", tmp_path / "f.parquet", "--no-cache")
    rows = _rows(tmp_path / "f.parquet")
    ok = sorted((os.path.basename(r["path"]), r["label"]) for r in rows if r["status"] == "ok")
    assert ok == [("img0.png", None), ("img1.png", "sub")]  # it wrote 82 rows before
    loops = [r for r in rows if r["status"].startswith("error: a link to a folder already listed")]
    assert len(loops) == 2 and code == 0


# ---------------------------------------------------------------- case 10: file names of any bytes
def test_case10_non_utf8_names_embed_and_predict(model_dir, tmp_path, capsys):
    d = tmp_path / "n"
    _images(d, 3)
    raw = os.fsencode(str(d)) + b"/\xff\xfe.png"
    with open(raw, "wb") as f:
        f.write(png(color=(1, 2, 3)))
    code, err = _embed(capsys, d, "--out", tmp_path / "f.parquet", "--no-cache")
    assert code == 0
    paths = sorted(os.path.basename(r["path"]) for r in _rows(tmp_path / "f.parquet"))
    assert paths == ["\\xff\\xfe.png", "img0.png", "img1.png", "img2.png"]  # escaped, not a failed file
    with time_limit(120):
        code = main(["predict", str(model_dir), str(d), "--out", str(tmp_path / "p.csv"), "--no-describe",
                     "--no-cache", "--quiet"])
    capsys.readouterr()
    assert code == 0
    data = (tmp_path / "p.csv").read_bytes()
    assert b"/\xff\xfe.png," in data  # the file's own bytes, as ls shows them
    with open(tmp_path / "p.csv", encoding="utf-8", errors="surrogateescape", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all(r["predicted"] for r in rows)  # it left 5 of 8 rows before
    assert all(os.path.exists(r["path"]) for r in rows)  # read back with surrogateescape: the real names
    with time_limit(120):
        code = main(["predict", str(model_dir), str(d), "--out", str(tmp_path / "p.json"), "--no-describe",
                     "--no-cache", "--quiet"])
    capsys.readouterr()
    rows = json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))
    assert code == 0 and len(rows) == 4 and all(os.path.exists(r["path"]) for r in rows)


# ---------------------------------------------------------------- case 11: manifests
def test_case11_csv_with_bom_and_huge_fields(tmp_path):
    from wordsight.io.sources import MAX_MANIFEST_FIELD, from_manifest

    _images(tmp_path / "i", 2)
    big = "y" * 200_000
    huge = "z" * (MAX_MANIFEST_FIELD + 10)
    text = f"path,label,text\ni/img0.png,cat,{big}\ni/img1.png,dog,{huge}\ni/img1.png,dog,short\n"
    (tmp_path / "m.csv").write_bytes("\ufeff".encode() + text.encode())
    src = from_manifest(tmp_path / "m.csv")
    assert [(os.path.basename(s.path), s.label) for s in src.samples] == [("img0.png", "cat"), ("img1.png", "dog")]
    assert src.samples[0].text == big
    assert len(src.problems) == 1 and src.problems[0].path == f"{tmp_path / 'm.csv'}:3"
    assert "field larger than field limit" in src.problems[0].reason


def test_case11_jsonl_types_and_line_numbers(tmp_path):
    from wordsight.io.sources import from_manifest

    _images(tmp_path / "i", 1)
    lines = ['{"path": "i/img0.png", "label": "a"}', "", '{"path": 5}', "{broken", "[1, 2]",
             '{"path": "i/img0.png", "label": ["x"]}', "[" * 5000 + "]" * 5000, '{"path": "i/img0.png"}']
    (tmp_path / "m.jsonl").write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    src = from_manifest(tmp_path / "m.jsonl")
    assert [s.label for s in src.samples] == ["a", None]
    where = {p.path.rsplit(":", 1)[1]: p.reason for p in src.problems}
    assert where == {"3": "'path' must be a string, not int", "4": "bad JSON line: Expecting property name "
                     "enclosed in double quotes", "5": "row is a JSON list, not an object with a 'path'",
                     "6": "'label' must be a string, not list", "7": "bad JSON line: nested too deeply"}


def test_case11_manifest_errors_through_the_cli(tmp_path, capsys):
    _images(tmp_path / "i", 1)
    (tmp_path / "m.jsonl").write_text('{"path": 5}\n{"path": "i/img0.png"}\n')
    code, err = _embed(capsys, tmp_path / "m.jsonl", "--out", tmp_path / "f.parquet", "--no-cache")
    assert code == 0 and "m.jsonl:1: 'path' must be a string, not int" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- case 12: damaged caches
def _whole_file(db):
    con = sqlite3.connect(db)  # fold the write-ahead log in, then damage the file itself
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)


def _damage_random(db):
    _whole_file(db)
    db.write_bytes(os.urandom(8192))


def _damage_truncate(db):
    _whole_file(db)
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])


def _damage_row(db, blob):
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE features SET data = ?", (blob,))
    con.close()


def _wrong_shape(db):
    from safetensors.numpy import save

    _damage_row(db, save({"embedding": np.ones(7, np.float32), "logits": np.ones(1000, np.float32)}))


@pytest.mark.parametrize("damage", [_damage_random, _damage_truncate, lambda db: _damage_row(db, b"garbage"),
                                    _wrong_shape], ids=["random-bytes", "truncated", "garbage-row", "wrong-shape"])
def test_case12_damaged_feature_cache_is_set_aside_or_repaired(tmp_path, capsys, damage):
    d = tmp_path / "d"
    _images(d, 3)
    cache = tmp_path / "cache"
    code, _ = _embed(capsys, d, "--out", tmp_path / "a.parquet", "--cache-dir", cache)
    assert code == 0
    damage(cache / "features.sqlite")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, err = _embed(capsys, d, "--out", tmp_path / "b.parquet", "--cache-dir", cache)
    assert code == 0 and "Traceback" not in err
    a, b = _rows(tmp_path / "a.parquet"), _rows(tmp_path / "b.parquet")
    assert [r["status"] for r in b] == ["ok"] * 3
    np.testing.assert_allclose([r["embedding"] for r in b], [r["embedding"] for r in a], rtol=1e-5, atol=1e-6)
    messages = [str(w.message) for w in caught]
    aside = sorted(p.name for p in cache.glob("features.sqlite.damaged-*"))
    if aside:  # a damaged database is quarantined, with a warning naming it
        assert any(str(cache / "features.sqlite") in m and "moved aside" in m for m in messages)
    else:  # a damaged row is recomputed and replaced
        from wordsight.features.cache import FeatureCache

        assert len(FeatureCache(cache)) == 3


def test_case12_damaged_cache_does_not_break_predict(model_dir, tmp_path, capsys):
    d = tmp_path / "d"
    _images(d, 2)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "features.sqlite").write_bytes(b"SQLite format 3\0" + os.urandom(5000))
    from wordsight.features.cache import CacheWarning

    with time_limit(120), pytest.warns(CacheWarning, match=r"features.sqlite: damaged feature cache .* moved aside"):
        code = main(["predict", str(model_dir), str(d), "--no-describe", "--cache-dir", str(cache), "--quiet"])
    out = capsys.readouterr()
    assert code == 0 and out.out.count("img") == 2


def test_case12_cache_dir_naming_a_file(tmp_path, capsys):
    _images(tmp_path / "d", 1)
    (tmp_path / "afile").write_text("x")
    code, err = _embed(capsys, tmp_path / "d", "--out", tmp_path / "f.parquet", "--cache-dir", tmp_path / "afile")
    assert code == 1
    assert err.strip().splitlines()[-1] == (f"wordsight embed: error: {tmp_path / 'afile'}: the cache folder is a "
                                            "file, not a folder (--cache-dir names a folder; it is created when "
                                            "missing)")


# ---------------------------------------------------------------- case 13: entries that were skipped silently
def test_case13_dangling_link_folder_named_like_an_image_and_truncated_ppm(tmp_path, capsys):
    d = tmp_path / "d"
    _images(d, 2)
    (d / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (d / "x.jpg").mkdir()
    (d / "cut.ppm").write_bytes(b"P6\n64 64\n255\n" + b"\x80" * 100)  # header says 12,288 bytes of pixels
    code, err = _embed(capsys, d, "--out", tmp_path / "f.parquet", "--no-cache")
    rows = {os.path.basename(r["path"]): r for r in _rows(tmp_path / "f.parquet")}
    assert code == 0
    assert rows["img0.png"]["status"] == "ok" and rows["img0.png"]["label"] is None  # still a flat folder
    assert rows["gone.jpg"]["status"] == "error: dangling link"
    assert rows["x.jpg"]["status"] == "error: a folder named like an image file, not an image: skipped"
    assert [p.path for p in open_source(d).problems].count(str(d / "x.jpg")) == 1  # reported once, not twice
    assert rows["cut.ppm"]["status"].startswith("error: cannot decode image: truncated")


def test_held_decoder_limits_for_cli_images(tmp_path):
    from wordsight.io.images import ImageError, decode_image

    with pytest.raises(ImageError, match="aspect ratio above the limit of 50:1"):
        decode_image(png((20000, 1)))
    assert decode_image(png((500, 10))).size == (500, 10)
    with pytest.raises(ImageError, match="side longer"):
        decode_image(png((100, 40)), max_side=99)
