"""Issue 28, defects 6, 8, 9, 12, 14 and 16: spreadsheet formulas in CSV outputs, `predict` over a long
list in bounded batches, counts out of their bounds, `$` in class names drawn into plots, and the
size of concept and class files."""
from __future__ import annotations

import csv
import json
import shutil

import pytest

from wordsight.cli import main
from wordsight.frontend import InputError
from wordsight.frontend.counts import COUNTS, check_count
from wordsight.io.records import Prediction, RecordWriter, csv_cell, write_records

from .conftest import png, time_limit


def _run(capsys, *argv, limit=180):
    capsys.readouterr()
    with time_limit(limit):
        code = main([*map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------- defect 6: CSV formula injection
FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "=cmd|' -C calc'!A0.png", "@SUM(A1)", "+x", "-2+3", "\tx", "\rx"]


def test_case28_6_cells_a_spreadsheet_would_run_start_with_a_quote():
    assert [csv_cell(v) for v in FORMULAS] == ["'" + v for v in FORMULAS]
    assert [csv_cell(v) for v in ("cat", "0.500000", "a=b", " =x", "", "'=x")] == ["cat", "0.500000", "a=b", " =x",
                                                                                      "", "'=x"]


def test_case28_6_predictions_with_formula_classes_and_paths_are_written_as_text(tmp_path):
    records = [Prediction(FORMULAS[1], label="@SUM(A1)", predicted="+x", top_k=[("+x", 0.75), ("=1+1", 0.25)],
                          description="-bad words"),
               Prediction("=HYPERLINK(\"u\")", error="=bad")]
    write_records(records, tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0] == {"path": "'=cmd|' -C calc'!A0.png", "label": "'@SUM(A1)", "predicted": "'+x",
                       "probability": "0.750000", "top1": "'+x", "p1": "0.750000", "top2": "'=1+1",
                       "p2": "0.250000", "description": "'-bad words", "error": ""}
    assert (rows[1]["path"], rows[1]["error"], rows[1]["predicted"]) == ("'=HYPERLINK(\"u\")", "'=bad", "")
    write_records(records, tmp_path / "out.jsonl")  # only CSV is read by spreadsheets: the others keep the text
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])["path"] == FORMULAS[1]


def test_case28_6_predict_csv_through_the_cli(model_dir, photo_folder, tmp_path, capsys, monkeypatch):
    d = tmp_path / "imgs"
    d.mkdir()
    shutil.copy(photo_folder / "cat" / "0.jpg", d / "=cmd|' -C calc'!A0.jpg")
    shutil.copy(photo_folder / "cat" / "0.jpg", d / "cat.jpg")
    monkeypatch.chdir(d)  # relative paths: the cell starts with the file name
    code, _, err = _run(capsys, "predict", model_dir, "=cmd|' -C calc'!A0.jpg", "cat.jpg", "--no-describe",
                        "--out", tmp_path / "p.csv", "--quiet")
    assert code == 0, err
    with open(tmp_path / "p.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == ["'=cmd|' -C calc'!A0.jpg", "cat.jpg"]
    assert rows[0]["predicted"] == rows[1]["predicted"] == "cat"


# ---------------------------------------------------------------- defects 9 and 14: counts
BAD_COUNTS = [
    (["predict", "m", "x", "--top-k", "-3"], "predict", "--top-k must be between 1 and 1,000 (classes listed per "
     "image), not -3"),
    (["zeroshot", "x", "--classes", "a,b", "--top-k", "0"], "zeroshot", "--top-k must be between 1 and 1,000 "
     "(classes listed per image), not 0"),
    (["explain", "m", "x", "--out", "o", "--lime-samples", "0"], "explain", "--lime-samples must be between 1 and "
     "10,000 (LIME perturbations per image), not 0"),
    (["explain", "m", "x", "--out", "o", "--lime-samples", "100000000"], "explain", "--lime-samples must be between "
     "1 and 10,000 (LIME perturbations per image), not 100,000,000"),
    (["explain", "m", "x", "--out", "o", "--shap-evals", "10001"], "explain", "--shap-evals must be between 1 and "
     "10,000 (SHAP model calls per image), not 10,001"),
    (["fit", "d", "--out", "m", "--augment", "65"], "fit", "--augment must be between 0 and 64 (augmented views per "
     "training image), not 65"),
    (["fit", "d", "--out", "m", "--tta", "-1"], "fit", "--tta must be between 0 and 64 (test-time augmentation "
     "views), not -1"),
    (["evaluate", "m", "d", "--draws", "0"], "evaluate", "--draws must be between 1 and 100 (random draws per "
     "few-shot point), not 0"),
    (["evaluate", "m", "d", "--train", "t", "--few-shot", "1,0"], "evaluate", "--few-shot must be between 1 and "
     "1,000 (labelled images per class of a few-shot point), not 0"),
    (["describe", "x", "--top", "0"], "describe", "--top must be between 1 and 100 (concepts per description), not 0"),
    (["describe", "x", "--top", "-1"], "describe", "--top must be between 1 and 100 (concepts per description), "
     "not -1"),
    (["zeroshot", "x", "--classes", "a,b", "--k", "257"], "zeroshot", "--k must be between 1 and 256 (descriptions "
     "per class), not 257"),
]


@pytest.mark.parametrize("argv,verb,message", BAD_COUNTS, ids=[" ".join(a[-2:]) for a, _, _ in BAD_COUNTS])
def test_case28_9_14_counts_out_of_bounds_are_one_line_before_any_work(argv, verb, message, capsys):
    code, out, err = _run(capsys, *argv, limit=20)  # the model, data and image paths do not exist: never read
    assert (code, out, err) == (1, "", f"wordsight {verb}: error: {message}\n")


def test_case28_9_every_bound_is_inclusive_and_named():
    for name, (lo, hi, what) in COUNTS.items():
        assert (check_count(name, lo), check_count(name, hi), check_count(name, str(hi))) == (lo, hi, hi)
        for bad in (lo - 1, hi + 1):
            with pytest.raises(InputError) as e:
                check_count(name, bad, f"--{name}")
            assert (e.value.status_code, e.value.code) == (422, f"invalid_{name}")
            assert e.value.detail == f"--{name} must be between {lo:,} and {hi:,} ({what}), not {bad:,}"
    assert (COUNTS["lime_samples"][:2], COUNTS["shap_evals"][:2], COUNTS["augment"][:2], COUNTS["tta"][:2],
            COUNTS["draws"][:2], COUNTS["few_shot"][:2], COUNTS["top_k"][:2]) == \
        ((1, 10_000), (1, 10_000), (0, 64), (0, 64), (1, 100), (1, 1000), (1, 1000))
    with pytest.raises(InputError, match=r"^top_k takes a whole number \(classes listed per image\), not 'x'$"):
        check_count("top_k", "x")


def test_case28_9_the_classifier_and_the_cli_agree_on_augment_and_tta():
    from wordsight.estimator import Classifier

    constraints = Classifier._parameter_constraints
    for name in ("augment", "tta"):
        interval = constraints[name][0]
        assert (interval.left, interval.right) == COUNTS[name][:2]


# ---------------------------------------------------------------- defect 16: concept and class files
def test_case28_16_concept_files_are_bounded_in_bytes_and_concepts(tmp_path, capsys):
    from wordsight.text.concepts import MAX_CONCEPTS, MAX_FILE_BYTES, ConceptBank

    assert (MAX_FILE_BYTES, MAX_CONCEPTS) == (4 * 1024 * 1024, 20_000)
    at_limit = tmp_path / "ok.txt"
    at_limit.write_text("\n".join(f"c{i}" for i in range(MAX_CONCEPTS)))
    assert len(ConceptBank.from_file(at_limit).names) == MAX_CONCEPTS  # embedded later, on first use
    many = tmp_path / "many.txt"
    many.write_text("\n".join(f"c{i}" for i in range(MAX_CONCEPTS + 1)))
    big = tmp_path / "big.json"
    big.write_text(json.dumps(["x" * (MAX_FILE_BYTES // 2)] * 2))
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("name\ncaf\xe9\n".encode("latin-1"))
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.png").write_bytes(png())
    expected = {many: f"{many}: {MAX_CONCEPTS + 1:,} concepts, more than the limit of {MAX_CONCEPTS:,}",
                big: f"{big}: {big.stat().st_size:,} bytes, more than the limit of {MAX_FILE_BYTES:,}",
                bad: f"{bad}: not utf-8 text"}
    for path, message in expected.items():
        code, _, err = _run(capsys, "describe", d, "--concepts", path, "--quiet", limit=60)
        assert code == 1 and err.startswith(f"wordsight describe: error: {message}"), err
        assert len(err.strip().splitlines()) == 1


def test_case28_16_class_files_are_bounded_in_bytes_and_classes(tmp_path, capsys):
    from wordsight.frontend import MAX_FIELD
    from wordsight.frontend.classes import MAX_CLASSES

    many = tmp_path / "many.txt"
    many.write_text("\n".join(f"c{i}" for i in range(MAX_CLASSES + 1)))
    big = tmp_path / "big.txt"
    big.write_text("a\n" + "b" * MAX_FIELD)
    for path, message in ((many, f"{many}: at most {MAX_CLASSES} names of at most 200 characters"),
                          (big, f"{big}: {big.stat().st_size:,} bytes, more than the limit of {MAX_FIELD:,}")):
        code, _, err = _run(capsys, "zeroshot", tmp_path, "--classes-file", path, "--quiet", limit=60)
        assert code == 1 and err.startswith(f"wordsight zeroshot: error: {message}"), err


# ---------------------------------------------------------------- defect 12: `$` in plotted text
def test_case28_12_class_names_are_drawn_as_written(tmp_path):
    from matplotlib.text import Text

    from wordsight.evaluate.plots import literal
    from wordsight.evaluate.report import plot_confusion

    names = ["$x^2$", "a$\\b$", "$$", "US$ 5", "a\\$b", "plain"]
    for name in names:  # matplotlib's own reading of the escaped text: no maths, and the name as written
        assert Text(text=literal(name))._preprocess_math(literal(name)) == (name, False)
    plot_confusion({"confusion": [[1, 0], [0, 1]], "classes": ["a$\\b$", "$$"]}, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0


def test_case28_12_evaluate_report_with_dollars_in_class_names(photo_folder, tmp_path, capsys):
    data = tmp_path / "data"
    for src, name in (("cat", "a$\\b$ cats"), ("rocket", "$$ rockets")):
        shutil.copytree(photo_folder / src, data / name)
    model, report = tmp_path / "model", tmp_path / "report"
    assert _run(capsys, "fit", data, "--out", model, "--fusion", "image", "--C", "1", "--quiet")[0] == 0
    code, _, err = _run(capsys, "evaluate", model, data, "--report", report, "--quiet")
    assert code == 0 and "Traceback" not in err, err
    assert (report / "confusion.png").stat().st_size > 0
    assert "a$\\b$ cats" in (report / "index.html").read_text()


# ---------------------------------------------------------------- defect 8: predict streams
def test_case28_8_predict_holds_one_chunk_at_a_time_and_writes_the_same_rows(model_dir, photo_folder, tmp_path,
                                                                              capsys, monkeypatch):
    from wordsight.cli import predict
    from wordsight.estimator import Classifier

    paths = sorted(str(p) for p in photo_folder.rglob("*.jpg"))
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    rows = [*paths * 3, str(tmp_path / "broken.jpg"), *paths * 2]  # 41 rows, one broken
    with open(tmp_path / "list.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path"], *[[p] for p in rows]])
    seen = []
    real = Classifier.predict_records

    def counted(self, X, *args, **kwargs):  # the real method: only how many images it was given is noted
        seen.append(len(X.samples) + len(X.problems))
        return real(self, X, *args, **kwargs)

    monkeypatch.setattr(Classifier, "predict_records", counted)
    outputs = {}
    for chunk in (8, 1024):
        monkeypatch.setattr(predict, "CHUNK", chunk)
        seen.clear()
        out = tmp_path / f"out{chunk}.jsonl"
        code, _, err = _run(capsys, "predict", model_dir, tmp_path / "list.csv", "--out", out, "--quiet", "--top-k",
                            "2")
        assert code == 0, err
        outputs[chunk] = [json.loads(line, parse_float=lambda v: round(float(v), 9))  # BLAS: batch-size noise
                          for line in out.read_text().splitlines()]
        assert max(seen) <= chunk and sum(seen) == len(rows)
    assert len(seen) == 1 and outputs[8] != []
    key = lambda r: (r["path"], r["error"] is None)  # noqa: E731 - chunks place their failures after their images
    assert sorted(outputs[8], key=key) == sorted(outputs[1024], key=key)
    assert len(outputs[8]) == 41 and sum(r["error"] is not None for r in outputs[8]) == 1


def test_case28_8_the_record_writer_appends_batches_to_one_file(tmp_path):
    batches = [[Prediction(f"{b}-{i}.png", predicted="cat", top_k=[("cat", 0.9), ("dog", 0.1)]) for i in range(3)]
               for b in range(4)]
    for suffix in (".json", ".jsonl", ".csv", ".parquet"):
        out = tmp_path / f"out{suffix}"
        with RecordWriter(out, 2) as writer:
            for batch in batches:
                writer.write(batch)
        whole = tmp_path / f"whole{suffix}"
        write_records([r for b in batches for r in b], whole)
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            assert pq.read_table(out).to_pylist() == pq.read_table(whole).to_pylist()
        else:
            assert out.read_text() == whole.read_text()
    assert [r["path"] for r in json.loads((tmp_path / "out.json").read_text())] == \
        [f"{b}-{i}.png" for b in range(4) for i in range(3)]
    with pytest.raises(RuntimeError), RecordWriter(tmp_path / "failed.csv", 2) as writer:
        writer.write(batches[0])
        raise RuntimeError("stopped midway")
    assert sorted(p.name for p in tmp_path.iterdir() if "failed" in p.name) == []
