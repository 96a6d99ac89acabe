"""wordsight.frontend called directly: the one class-list rule, descriptions, texts, top-k and the
server's JSON of a record, each at its limit and one past it."""
from __future__ import annotations

import json

import pytest

from wordsight.frontend import (
    MAX_FIELD,
    InputError,
    check_top_k,
    parse_classes,
    parse_descriptions,
    parse_texts,
    read_classes_file,
    read_descriptions,
    result_json,
    upload_samples,
)
from wordsight.frontend.classes import MAX_CLASS_NAME, MAX_CLASSES


def refused(fn, *args) -> InputError:
    with pytest.raises(InputError) as e:
        fn(*args)
    return e.value


@pytest.mark.parametrize("text,names", [
    ("cat,dog", ["cat", "dog"]),
    ("  cat , dog  ,bird ", ["cat", "dog", "bird"]),
    ("T-shirt, top\nTrouser\n", ["T-shirt, top", "Trouser"]),  # with a newline, commas belong to names
    ('["a, b", " c "]', ["a, b", "c"]),
])
def test_class_lists_by_one_rule(text, names):
    assert parse_classes(text) == names


def test_class_list_limits_at_the_limit_and_one_past():
    assert len(parse_classes(",".join(f"c{i}" for i in range(MAX_CLASSES)))) == MAX_CLASSES
    e = refused(parse_classes, ",".join(f"c{i}" for i in range(MAX_CLASSES + 1)), "--classes")
    assert (e.status_code, e.code, e.detail) == (422, "invalid_classes", "--classes: at most 1000 names of at most "
                                                 "200 characters")
    assert parse_classes(f"{'x' * MAX_CLASS_NAME},y")[0] == "x" * MAX_CLASS_NAME
    assert refused(parse_classes, f"{'x' * (MAX_CLASS_NAME + 1)},y").code == "invalid_classes"
    e = refused(parse_classes, "a," * (MAX_FIELD // 2) + "b")
    assert (e.status_code, e.detail) == (413, f"classes: {MAX_FIELD + 1:,} characters, more than the limit of "
                                              f"{MAX_FIELD:,}")


def test_classes_file_is_read_by_the_same_rule(tmp_path):
    (tmp_path / "c.txt").write_text("cat\ndog\n")
    (tmp_path / "c.json").write_text('["cat", "dog"]')
    (tmp_path / "bad.txt").write_text("cat\n\ndog\n")
    assert read_classes_file(tmp_path / "c.txt") == read_classes_file(tmp_path / "c.json") == ["cat", "dog"]
    e = refused(read_classes_file, tmp_path / "bad.txt")
    assert e.detail == f"{tmp_path / 'bad.txt'}: class name 2 of 3 is empty (separate names by one comma or newline each)"
    with pytest.raises(FileNotFoundError, match="classes file not found"):
        read_classes_file(tmp_path / "none.txt")


def test_descriptions_for_exactly_the_classes_in_order(tmp_path):
    text = json.dumps({"_provenance": {"llm": "none"}, "dog": "a dog", "T-shirt/top": [{"text": "a tee", "weight": 2}]})
    got = parse_descriptions(text, ["cat", "T-shirt-top", "dog"])
    assert got == {"cat": [], "T-shirt-top": [{"text": "a tee", "weight": 2}], "dog": ["a dog"]}
    assert list(got) == ["cat", "T-shirt-top", "dog"]
    (tmp_path / "d.json").write_text(text)
    assert read_descriptions(tmp_path / "d.json", ["cat", "T-shirt-top", "dog"]) == got
    e = refused(parse_descriptions, "x" * (MAX_FIELD + 1), ["a", "b"])
    assert (e.status_code, e.code) == (413, "invalid_descriptions")


def test_texts_field_and_top_k():
    assert parse_texts('["a red bag", null, " "]', 3, True, "late") == ["a red bag", None, None]
    assert parse_texts(None, 3, False, "image") is None
    e = refused(parse_texts, '["a"]', 1, False, "image")
    assert (e.code, e.detail) == ("texts_not_used", "texts: this model (fusion 'image') does not read texts; only "
                                  "models fitted with fusion 'paired' or 'late' do")
    assert (check_top_k(1, 4), check_top_k(4, 4), check_top_k(5, 4)) == (1, 4, 4)
    assert refused(check_top_k, 0, 4).detail == "top_k must be between 1 and 1,000 (classes listed per image), not 0"
    assert refused(check_top_k, 1001, 4000).code == "invalid_top_k" and check_top_k(1000, 4000) == 1000


def test_result_json_of_a_record_and_of_a_description_alone():
    import io
    from types import SimpleNamespace

    import numpy as np
    from PIL import Image

    from wordsight.io.records import Prediction, predictions

    buf = io.BytesIO()
    Image.new("RGB", (6, 4)).save(buf, "PNG")
    limits = SimpleNamespace(max_upload_bytes=1000, max_pixels=24, max_side=6, max_aspect=2.0)
    u = upload_samples([("dir/a.png", buf.getvalue())], limits)[0]
    assert (u.name, u.width, u.height) == ("a.png", 6, 4)
    r = predictions([u.sample.path], [None], ["x", "y", "z"], np.array([[0.2, 0.5, 0.3]]), 2, ["words"])[0]
    assert result_json(u, r) == {"file": "a.png", "width": 6, "height": 4, "predicted": "y",
                                 "top_k": [{"class": "y", "probability": 0.5}, {"class": "z", "probability": 0.3}],
                                 "description": "words"}
    assert len(result_json(u, r, 1)["top_k"]) == 1
    assert result_json(u, Prediction(u.sample.path, description="words")) == {
        "file": "a.png", "width": 6, "height": 4, "description": "words"}
