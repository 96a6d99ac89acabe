"""An exported ONNX folder (``wordsight export``) is verified by its standalone runner before any
file is run: an edited ``pipeline.json`` (the class list reversed), a changed ONNX file, a file
named outside the folder or linked out of it, each refused in one line naming the file."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil

import pytest

from .conftest import resign

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def export_dir(model_dir, tmp_path_factory):
    from wordsight.export import export_onnx

    return export_onnx(model_dir, tmp_path_factory.mktemp("export") / "onnx", text=False)


@pytest.fixture
def copy(export_dir, tmp_path):
    dst = tmp_path / "onnx"
    shutil.copytree(export_dir, dst, symlinks=True)
    return dst


def _runner(folder):
    spec = importlib.util.spec_from_file_location("exported_runner_hostile", folder / "runner.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _refused(folder, match: str) -> str:
    mod = _runner(folder)
    with pytest.raises(mod.ExportFolderError, match=match) as info:
        mod.Pipeline(folder, threads=1)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_the_untouched_export_is_sealed_and_runs(copy, model_dir):
    spec = json.loads((copy / "pipeline.json").read_text())
    listed = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file() and p.name != "pipeline.json")
    assert sorted(spec["files"]) == listed and {"head.onnx", "image_encoder.onnx", "runner.py"} <= set(listed)
    assert spec["files"]["head.onnx"] == hashlib.sha256((copy / "head.onnx").read_bytes()).hexdigest()
    pipe = _runner(copy).Pipeline(copy, threads=1)
    assert pipe.classes == ["astronaut", "cat", "coffee", "rocket"]


def test_a_reversed_class_list_is_refused(copy):
    spec = json.loads((copy / "pipeline.json").read_text())
    spec["classes"] = spec["classes"][::-1]
    (copy / "pipeline.json").write_text(json.dumps(spec))
    _refused(copy, r"pipeline.json: checksum mismatch: pipeline.json was edited")


def test_a_changed_onnx_file_is_refused(copy):
    data = bytearray((copy / "head.onnx").read_bytes())
    data[-3] ^= 0xFF
    (copy / "head.onnx").write_bytes(bytes(data))
    _refused(copy, r"head.onnx: checksum mismatch: the file was modified")


def test_a_head_outside_the_folder_is_refused_even_re_signed(copy, tmp_path):
    (tmp_path / "outside").mkdir()
    shutil.copyfile(copy / "head.onnx", tmp_path / "outside" / "x.onnx")
    resign(copy, lambda c: c["head"].update(file="../outside/x.onnx"), config_name="pipeline.json")
    _refused(copy, r"\{'name': 'logistic', 'file': '../outside/x.onnx'\} runs a file not listed in 'files'")
    resign(copy, lambda c: c["files"].update({"../outside/x.onnx": "0" * 64}), config_name="pipeline.json")
    _refused(copy, r"'../outside/x.onnx' leaves the folder")
    def absolute(c):
        c["files"].pop("../outside/x.onnx")
        c["files"][str(tmp_path / "outside" / "x.onnx")] = "0" * 64

    resign(copy, absolute, config_name="pipeline.json")
    _refused(copy, r"is an absolute path")


def test_a_head_linked_out_of_the_folder_is_refused(copy, tmp_path):
    shutil.copyfile(copy / "head.onnx", tmp_path / "x.onnx")
    (copy / "head.onnx").unlink()
    os.symlink(tmp_path / "x.onnx", copy / "head.onnx")
    resign(copy, config_name="pipeline.json")
    _refused(copy, r"'head.onnx' is a link that leads out of the folder")


def test_a_fifo_in_place_of_a_file_is_refused(copy):
    (copy / "head.onnx").unlink()
    os.mkfifo(copy / "head.onnx")
    _refused(copy, r"head.onnx: not a regular file")


def test_an_export_without_checksums_is_refused(copy):
    spec = json.loads((copy / "pipeline.json").read_text())
    spec.pop("config_sha256")
    (copy / "pipeline.json").write_text(json.dumps(spec))
    _refused(copy, r"no checksums \(exported by an older wordsight\?\): export the model again")
