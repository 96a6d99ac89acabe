"""Issue 28, defect 17, the CLI's part (and the export folder noticed beside it): files named in
errors, JSON entries of the wrong type named precisely, re-fitting over a model of another fusion,
output formats, ``export --out`` into a user's folder."""
from __future__ import annotations

import json
import shutil
import warnings

import pytest


def _cli(capsys, argv) -> tuple[int, str]:
    from wordsight.cli import main

    rc = main(argv)
    return rc, capsys.readouterr().err


def test_non_utf8_concept_and_class_files_are_named(tmp_path):
    from wordsight.frontend import read_classes_file
    from wordsight.io.safe_files import UnsafeFileError
    from wordsight.text.concepts import read_concepts

    bad = tmp_path / "latin1-concepts.txt"
    bad.write_bytes("café\nchat\n".encode("latin-1"))
    with pytest.raises(UnsafeFileError, match=r"latin1-concepts\.txt: not utf-8 text \(invalid continuation byte"):
        read_concepts(bad)
    with pytest.raises(UnsafeFileError, match=r"latin1-concepts\.txt: not utf-8 text"):
        read_classes_file(bad)


@pytest.mark.parametrize("content,message", [
    (["cat", 5], r"concept 2 of 2 is int, not a name"),
    ({"cat": "a feline", "dog": {"text": "x"}}, r"the description of 'dog' is dict"),
    ({"cat": ["striped", 3]}, r"the description of 'cat' is list"),
    ("cat", r"expected a JSON list of names or an object \{name: description\}, not str"),
])
def test_wrong_types_in_a_concept_file_are_named(tmp_path, content, message):
    from wordsight.text.concepts import read_concepts

    path = tmp_path / "concepts.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=rf"concepts\.json: {message}"):
        read_concepts(path)


def test_wrong_types_in_a_class_list_are_named():
    from wordsight.frontend import InputError, parse_classes

    with pytest.raises(InputError, match=r"--classes: class name 3 of 3 is a number, not a string"):
        parse_classes('["cat", "dog", 7]', "--classes")
    with pytest.raises(InputError, match=r"classes: a JSON value must be a list of strings, not an object"):
        parse_classes('{"cat": 1}')
    with pytest.raises(InputError, match=r"class name 1 of 2 is null"):
        parse_classes('[null, "dog"]')


def test_descriptions_wrong_type_named_precisely():
    from wordsight.frontend import InputError, parse_descriptions

    with pytest.raises(InputError, match=r"the descriptions of 'cat' must be strings or .* got int"):
        parse_descriptions('{"cat": ["striped", 4]}', ["cat", "dog"])
    with pytest.raises(InputError, match=r"the value for 'dog' must be a list of strings .* got int"):
        parse_descriptions('{"dog": 4}', ["cat", "dog"])


def test_refit_over_a_model_of_another_fusion_leaves_no_stale_files(model_dir, tmp_path):
    """The folder of another fusion's model (here: the saved model plus the ``zero_shot/`` files a
    prior model keeps, signed) is replaced whole by the next save, not written into."""
    from wordsight.estimator import load_model_folder

    from .conftest import resign

    target, fresh = tmp_path / "model", tmp_path / "fresh"
    shutil.copytree(model_dir, target)
    (target / "zero_shot").mkdir()
    (target / "zero_shot" / "prior.safetensors").write_bytes(b"stale")
    resign(target, lambda c: c["files"].update({"zero_shot/prior.safetensors": ""}))
    model = load_model_folder(model_dir)
    model.save(target)
    model.save(fresh)
    files = {p.relative_to(target).as_posix() for p in target.rglob("*")}
    assert files == {p.relative_to(fresh).as_posix() for p in fresh.rglob("*")}
    assert "zero_shot/prior.safetensors" not in files
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary sibling left
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stale files used to warn on every load
        load_model_folder(target)


@pytest.mark.parametrize("verb", ["embed", "predict"])
def test_unknown_output_extensions_refused_before_work(capsys, tmp_path, model_dir, verb):
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 20, 20)).save(tmp_path / "a.png")
    out = tmp_path / "x.xlsx"
    argv = (["embed", str(tmp_path / "a.png"), "--model", "pixels-32"] if verb == "embed"
            else ["predict", str(model_dir), str(tmp_path / "a.png")]) + ["--out", str(out)]
    rc, err = _cli(capsys, argv)
    assert rc != 0 and not out.exists()
    assert "x.xlsx: output must end in" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_export_into_a_users_folder_is_refused(capsys, tmp_path, model_dir):
    pytest.importorskip("onnxruntime")
    mine = tmp_path / "my-stuff"
    mine.mkdir()
    (mine / "pipeline.json").write_text('{"mine": true}')
    (mine / "notes.txt").write_text("keep me")
    rc, err = _cli(capsys, ["export", str(model_dir), "--out", str(mine), "--no-text"])
    assert rc != 0 and "not empty and not a wordsight export" in err and "Traceback" not in err
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "pipeline.json"]
    assert (mine / "pipeline.json").read_text() == '{"mine": true}'


def test_export_over_an_earlier_export_is_allowed(tmp_path, model_dir):
    pytest.importorskip("onnxruntime")
    from wordsight.export import check_export_target, export_onnx

    out = export_onnx(model_dir, tmp_path / "onnx", text=False)
    check_export_target(out)  # an export: written over
    check_export_target(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    check_export_target(tmp_path / "empty")
    assert json.loads((out / "pipeline.json").read_text())["format"] == "wordsight-onnx"


def test_export_over_an_earlier_export_leaves_none_of_its_files(tmp_path, model_dir):
    """A re-export is swapped in whole: a file the earlier export had and this one has not is gone,
    and a failed export leaves the earlier one as it was."""
    pytest.importorskip("onnxruntime")
    from wordsight.export import export_onnx

    out = export_onnx(model_dir, tmp_path / "onnx", text=False)
    before = sorted(p.name for p in out.iterdir())
    (out / "prior.onnx").write_bytes(b"left from an earlier export")
    export_onnx(model_dir, out, text=False)
    assert sorted(p.name for p in out.iterdir()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left beside it
    with pytest.raises(Exception):
        export_onnx(tmp_path / "no-such-model", out, text=False)
    assert sorted(p.name for p in out.iterdir()) == before
