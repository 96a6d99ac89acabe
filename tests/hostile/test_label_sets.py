"""Hostile multi-label inputs (issue 24): a manifest mixing `label` and `labels`, a label set with
an unknown label, images whose labels are all empty, 10,000 distinct labels, malformed cells.
Each is a clear one-line error or a stated behaviour, never a traceback."""
from __future__ import annotations

import json

import numpy as np
import pytest

from wordsight.cli import main
from wordsight.estimator import Classifier
from wordsight.io.sources import from_manifest

from .conftest import png


def _images(folder, n):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{i}.png").write_bytes(png(color=(20 * i % 255, 90, 200)))
    return [f"{i}.png" for i in range(n)]


def test_a_csv_with_both_label_and_labels_columns_is_refused(tmp_path, capsys):
    names = _images(tmp_path, 2)
    (tmp_path / "m.csv").write_text("path,label,labels\n" + "".join(f"{n},a,a|b\n" for n in names))
    assert main(["fit", str(tmp_path / "m.csv"), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "m.csv: has both a 'label' and a 'labels' column" in err


def test_jsonl_rows_that_mix_label_and_labels_are_refused(tmp_path):
    names = _images(tmp_path, 3)
    rows = [{"path": names[0], "labels": ["a", "b"]}, {"path": names[1], "label": "a"}, {"path": names[2], "labels": []}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(ValueError, match=r"m.jsonl: 1 row\(s\) give a 'label' and 2 give 'labels'"):
        from_manifest(tmp_path / "m.jsonl")
    (tmp_path / "both.jsonl").write_text(json.dumps({"path": names[0], "label": "a", "labels": ["a"]}))
    with pytest.raises(ValueError, match="both.jsonl:1: has both a 'label' and a 'labels' column"):
        from_manifest(tmp_path / "both.jsonl")


@pytest.mark.parametrize("cell,words", [
    ('{"path": "0.png", "labels": "a||b"}', "holds an empty label between '|' separators"),
    ('{"path": "0.png", "labels": [1, 2]}', "'labels' must be a list of strings"),
    ('{"path": "0.png", "labels": {"a": 1}}', "must be a '|'-separated string or a list of strings, not dict"),
    ('{"path": "0.png", "labels": ' + json.dumps([f"l{i}" for i in range(300)]) + "}", "at most 256 per image"),
])
def test_a_malformed_labels_cell_is_one_reported_row_and_the_others_are_kept(tmp_path, cell, words):
    _images(tmp_path, 2)
    (tmp_path / "m.jsonl").write_text(cell + "\n" + '{"path": "1.png", "labels": "a|b"}\n')
    src = from_manifest(tmp_path / "m.jsonl")
    assert [s.label for s in src.samples] == [("a", "b")]
    assert len(src.problems) == 1 and src.problems[0].path.endswith("m.jsonl:1") and words in src.problems[0].reason


def test_empty_label_cells_are_none_of_the_labels_and_all_empty_is_refused(tmp_path, capsys):
    names = _images(tmp_path, 4)
    (tmp_path / "some.csv").write_text("path,labels\n" + f"{names[0]},\n{names[1]},a\n{names[2]},b|a\n{names[3]},\n")
    assert [s.label for s in from_manifest(tmp_path / "some.csv").samples] == [(), ("a",), ("a", "b"), ()]
    (tmp_path / "none.csv").write_text("path,labels\n" + "".join(f"{n},\n" for n in names))
    assert main(["fit", str(tmp_path / "none.csv"), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("wordsight fit: error: a multi-label model needs at least two distinct labels among the "
                   "training images, got 0: []")


def test_ten_thousand_distinct_labels_are_refused_with_the_limit():
    X = np.random.default_rng(0).normal(size=(2500, 4))
    sets = [tuple(f"tag{4 * i + k}" for k in range(4)) for i in range(2500)]
    with pytest.raises(ValueError, match="10,000 distinct labels: a multi-label model holds at most 1,000"):
        Classifier(task="multi-label").fit(X, sets)


def test_an_unknown_label_at_evaluation_is_named_and_predict_passes_it_through(tmp_path, capsys):
    names = _images(tmp_path, 8)
    X_sets = [("a",), ("b",), ("a", "b"), (), ("a",), ("b",), ("a", "b"), ()]
    (tmp_path / "train.csv").write_text("path,labels\n" + "".join(f"{n},{'|'.join(s)}\n" for n, s in zip(names, X_sets)))
    assert main(["fit", str(tmp_path / "train.csv"), "--head", "logistic", "--C", "1", "--out", str(tmp_path / "m"),
                 "--quiet"]) == 0
    capsys.readouterr()
    (tmp_path / "test.csv").write_text(f"path,labels\n{names[0]},a|zebra\n{names[1]},b\n")
    assert main(["evaluate", str(tmp_path / "m"), str(tmp_path / "test.csv"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "label(s) ['zebra'] are not labels of this model (2 labels: a, b)" in err
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "test.csv"), "--out", str(tmp_path / "p.jsonl"),
                 "--no-describe", "--quiet"]) == 0  # stated: predict reports the given labels as they are
    first = json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])
    assert first["label"] == ["a", "zebra"] and set(first["predicted"]) <= {"a", "b"}


def test_search_on_label_sets_is_refused_before_any_work(tmp_path, capsys):
    names = _images(tmp_path, 2)
    (tmp_path / "m.csv").write_text("path,labels\n" + "".join(f"{n},a|b\n" for n in names))
    assert main(["fit", str(tmp_path / "m.csv"), "--search", "quick", "--out", str(tmp_path / "out"), "--quiet"]) == 1
    assert capsys.readouterr().err.strip() == ("wordsight fit: error: --search ranks single-label models; fit a "
                                               "multi-label model without --search (--head logistic|svm|mlp|mil, "
                                               "--encoders for tiles)")
