"""Every verb reads an image through one path: the real ``wordsight`` verbs, run in-process on
models they fitted themselves, report what ``Classifier.load(folder).predict_proba`` computes.

For every head x fusion (kNN and the rest with ``--class-weight balanced`` on an imbalanced set),
on tiny 28-px Fashion-MNIST images (read at the reduced input size, ``small_input``) and on
photos (a 320x240 JPEG, and a 768x512 JPEG that extraction decodes with DCT draft scaling):
``predict``'s written probabilities, ``explain``'s JSON probabilities, ``describe``'s words (led
by the model's class), ``evaluate``'s accuracy, the exported ONNX runner's and ``POST
/v1/explain``'s probabilities all equal ``predict_proba`` within 1e-5; a combination the library
refuses is refused with its reason. Frames of videos, DICOM and multi-page TIFF: the same parity for
``explain`` and ``predict`` in tests/media/test_explain_frames.py. (Before the one path, ``explain``
resized tiny images to the full input size and decoded large JPEGs in full: Sandal 0.502 by
``predict``, 0.414 by ``explain``.)
"""
from __future__ import annotations

import csv
import importlib.util
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from wordsight.cli import main
from wordsight.estimator import FUSIONS, HEADS, Classifier

TINY = {"Sandal": 4, "Trouser": 2}  # Fashion-MNIST training images per class (28 px)
CASES = [(h, f) for h in HEADS for f in FUSIONS]
ATOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Torch on one thread while this module runs: on a loaded 2-core machine two threads fight
    over the cores (measured: the default MLP head's fit took 70 s with 2 threads, 2.6 s with 1)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _photo(arr: np.ndarray, size: tuple[int, int], flip: bool = False) -> Image.Image:
    im = Image.fromarray(arr).resize(size, Image.Resampling.BICUBIC)
    return im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else im


@pytest.fixture(scope="module")
def verb_data(fashion_folder, tmp_path_factory):
    """(train.csv, test.csv, test paths): tiny garments and cat / coffee photos, each with a text
    (read only by the paired-text fusions)."""
    from skimage import data

    root = tmp_path_factory.mktemp("verbs")
    train, test = [], []
    for cls, n in TINY.items():
        for i, f in enumerate(sorted((fashion_folder / "train" / cls).glob("*.png"))[:n]):
            shutil.copy(f, root / f"train-{cls}-{i}.png")
            train.append((f"train-{cls}-{i}.png", cls, f"a photo of a {cls.lower()}"))
        f = sorted((fashion_folder / "test" / cls).glob("*.png"))[0]
        shutil.copy(f, root / f"test-{cls}.png")
        test.append((f"test-{cls}.png", cls))
    for cls, arr in (("cat", data.chelsea()), ("coffee", data.coffee())):
        for i, flip in enumerate((False, True)):
            _photo(arr, (320, 240), flip).save(root / f"train-{cls}-{i}.jpg", quality=90)
            train.append((f"train-{cls}-{i}.jpg", cls, f"a photo of a {cls}"))
    _photo(data.chelsea()[20:, 30:], (320, 240)).save(root / "test-cat-320.jpg", quality=90)
    _photo(data.coffee()[:, 40:], (768, 512)).save(root / "test-coffee-768.jpg", quality=90)  # draft-decoded
    test += [("test-cat-320.jpg", "cat"), ("test-coffee-768.jpg", "coffee")]
    for name, rows, cols in (("train.csv", train, ["path", "label", "text"]), ("test.csv", test, ["path", "label"])):
        with open(root / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            w.writerows(rows)
    return root / "train.csv", root / "test.csv", [str(root / r[0]) for r in test]


@pytest.fixture(scope="module")
def fitted(verb_data, tmp_path_factory):
    """``wordsight fit`` for every head x fusion: (head, fusion) -> the folder, or the refusal."""
    train = verb_data[0]
    out = {}
    for head, fusion in CASES:
        folder = tmp_path_factory.mktemp(f"{head}-{fusion}") / "model"
        rc = main(["fit", str(train), "--out", str(folder), "--head", head, "--fusion", fusion, "--C", "0.1",
                   "--class-weight", "balanced", "--quiet"])
        out[head, fusion] = folder if rc == 0 else None
    return out


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _columns(pairs, classes) -> np.ndarray:
    """Probabilities in ``classes`` order from (class, probability) pairs."""
    d = {str(c): p for c, p in pairs}
    return np.array([d[str(c)] for c in classes])


def test_every_head_and_fusion_is_fitted_or_refused(fitted, verb_data, capsys):
    refused = [case for case, folder in fitted.items() if folder is None]
    assert len(refused) < len(CASES) // 2, refused  # the library fits most combinations
    for head, fusion in refused:  # a refusal is a one-line reason, never a traceback
        rc, _, err = _run(capsys, ["fit", str(verb_data[0]), "--out", "/nonexistent/never-written", "--head", head,
                                   "--fusion", fusion, "--C", "0.1", "--class-weight", "balanced", "--quiet"])
        assert rc == 1 and err.strip() and "Traceback" not in err, (head, fusion, err)


@pytest.mark.parametrize("head,fusion", CASES)
def test_predict_explain_describe_and_evaluate_report_predict_proba(fitted, verb_data, tmp_path, capsys, head,
                                                                     fusion):
    folder = fitted[head, fusion]
    if folder is None:
        pytest.skip("refused by the library (asserted in test_every_head_and_fusion_is_fitted_or_refused)")
    _, test_csv, paths = verb_data
    clf = Classifier.load(folder)
    classes = [str(c) for c in clf.classes_]
    want = clf.predict_proba(paths)
    assert want.shape == (len(paths), len(classes)) and np.isfinite(want).all()

    # predict: the probabilities and the words it writes
    rc, _, err = _run(capsys, ["predict", str(folder), *paths, "--top-k", str(len(classes)),
                               "--out", str(tmp_path / "p.json"), "--quiet"])
    assert rc == 0, err
    rows = json.loads((tmp_path / "p.json").read_text())
    assert [r["path"] for r in rows] == paths
    got = np.array([_columns(((t["class"], t["probability"]) for t in r["top_k"]), classes) for r in rows])
    np.testing.assert_allclose(got, want, atol=ATOL)

    # explain: its JSON reports predict_proba's probabilities, on the view extraction reads
    explain = ["explain", str(folder), *paths, "--out", str(tmp_path / "x")]
    rc, _, err = _run(capsys, explain)
    if rc != 0:  # a head gradients cannot pass (a forest) is explained by LIME
        assert head == "random_forest" and "not differentiable" in err, err
        rc, _, err = _run(capsys, [*explain, "--method", "lime", "--lime-samples", "10"])
    assert rc == 0, err
    records = json.loads((tmp_path / "x" / "evidence.json").read_text())
    assert [r["path"] for r in records] == paths
    got = np.array([_columns(r["top_k"], classes) for r in records])  # top 5 of <= 5 classes: all of them
    np.testing.assert_allclose(got, want, atol=ATOL)
    assert [r["predicted"] for r in records] == [classes[i] for i in want.argmax(1)]
    tiny = [r for r, p in zip(records, paths) if p.endswith(".png")]
    assert tiny and all(r["view_box"][2] <= 28 for r in tiny)  # the 28-px image, not a 224-px blow-up

    # describe with the model folder: predict's words, led by predict_proba's class
    rc, out, err = _run(capsys, ["describe", *paths, "--model", str(folder), "--quiet"])
    assert rc == 0, err
    described = dict(line.split("\t", 1) for line in out.strip().splitlines())
    assert [described[p] for p in paths] == [r["description"] for r in rows]
    lead = [re.match(r"matches: (.+?) \(", described[p]).group(1) for p in paths]
    assert lead == [classes[i] for i in want.argmax(1)]

    # evaluate: its accuracy is predict_proba's on the labelled images
    rc, out, err = _run(capsys, ["evaluate", str(folder), str(test_csv), "--quiet"])
    assert rc == 0, err
    with open(test_csv, newline="") as f:
        labels = [r["label"] for r in csv.DictReader(f)]
    accuracy = np.mean([classes[i] == y for i, y in zip(want.argmax(1), labels)])
    assert re.search(r"accuracy\s+([\d.]+)%", out).group(1) == f"{accuracy:.2%}".rstrip("%")
    assert re.search(r"test images\s+(\d+)", out).group(1) == str(len(paths))


# every head behind the prior (the few-shot probe, or the head's ONNX form mixed with the prior),
# image and text blocks, and a paired-text fusion (refused: the export reads no texts)
EXPORT_CASES = [(h, "prior") for h in HEADS] + [("logistic", "image"), ("mlp", "concat"), ("svm", "text"),
                                                 ("logistic", "paired")]


@pytest.mark.parametrize("head,fusion", EXPORT_CASES)
def test_the_export_runner_reports_predict_proba_or_export_refuses(fitted, verb_data, tmp_path, capsys, head,
                                                                     fusion):
    pytest.importorskip("onnxruntime")
    folder = fitted[head, fusion]
    if folder is None:
        pytest.skip("refused by the library (asserted in test_every_head_and_fusion_is_fitted_or_refused)")
    paths = verb_data[2]
    out = tmp_path / "onnx"
    rc, _, err = _run(capsys, ["export", str(folder), "--out", str(out), "--no-text"])
    if rc != 0:  # refused with its reason, before anything is written
        reason = "no ONNX form" if fusion not in ("paired", "late") else "reads each image's own text"
        assert rc == 1 and reason in err and len(err.strip().splitlines()) == 1 and not out.exists(), err
        assert head in ("knn", "random_forest") or fusion in ("paired", "late"), err
        return
    assert fusion not in ("paired", "late")
    module = importlib.util.spec_from_file_location(f"runner_{head}_{fusion}", out / "runner.py")
    runner = importlib.util.module_from_spec(module)
    module.loader.exec_module(runner)
    np.testing.assert_allclose(runner.Pipeline(out).predict_proba(paths), Classifier.load(folder).predict_proba(paths),
                               atol=ATOL)


@pytest.mark.parametrize("head,fusion", [("logistic", "prior"), ("mlp", "late")])
def test_the_servers_explanations_report_predict_proba(fitted, verb_data, head, fusion):
    """``POST /v1/explain`` reads the uploaded bytes the way ``wordsight predict`` reads the files."""
    import httpx

    from wordsight.serve import BackgroundServer, ServeSettings

    folder, paths = fitted[head, fusion], verb_data[2]
    clf = Classifier.load(folder)
    classes = [str(c) for c in clf.classes_]
    files = [("files", (p.rsplit("/", 1)[1], open(p, "rb").read(), "image/png" if p.endswith(".png") else "image/jpeg"))
             for p in paths]
    with BackgroundServer(ServeSettings(model_dir=str(folder), warm_up=False)) as server:
        r = httpx.post(server.url + "/v1/explain", files=files, timeout=300)
    assert r.status_code == 200, r.text
    got = np.array([_columns(res["evidence"]["top_k"], classes) for res in r.json()["results"]])
    np.testing.assert_allclose(got, clf.predict_proba(paths), atol=ATOL)
