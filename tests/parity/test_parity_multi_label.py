"""One computation for the multi-label task (issue 24): the torch form, the ONNX export, the CLI's
predict, the server's /v1/predict and the Ray batch callable all report what ``predict_proba``
computes (independent per-label probabilities) and the label sets of ``predict``, within 1e-5."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from wordsight.estimator import Classifier
from wordsight.estimator.heads import LogisticHead, MLPHead, SVMHead
from wordsight.io.sources import open_source

from ..conftest import tag_reports

HEADS = {"logistic": LogisticHead(C=0.5), "svm": SVMHead(C=0.1), "mlp": MLPHead(hidden=(32,), epochs=2, min_steps=40)}


@pytest.fixture(scope="module")
def taggers(mosaic_manifests, tmp_path_factory):
    out = {}
    for name, head in HEADS.items():
        clf = Classifier(task="multi-label", head=head).fit(mosaic_manifests[0])
        folder = tmp_path_factory.mktemp(f"tagger-{name}") / "m"
        clf.save(folder)
        out[name] = clf, folder
    return out


@pytest.fixture(scope="module")
def tests(mosaic_manifests):
    return open_source(mosaic_manifests[1]).paths[:8]


@pytest.mark.parametrize("head", list(HEADS))
def test_the_torch_form_and_the_onnx_export_give_predict_proba(taggers, tests, tmp_path, head):
    pytest.importorskip("onnxruntime")
    from wordsight.export import export_onnx

    clf, folder = taggers[head]
    want = clf.predict_proba(tests)
    assert want.shape == (8, 10) and not np.allclose(want.sum(1), 1)
    F = clf.featurize(tests)
    with torch.no_grad():
        z = clf.state_.logits_torch(torch.from_numpy(np.asarray(F.matrix, np.float64)))
    np.testing.assert_allclose(torch.sigmoid(z).numpy(), want, atol=1e-9)
    out = export_onnx(folder, tmp_path / "onnx", text=False)
    spec = json.loads((out / "pipeline.json").read_text())
    assert spec["task"] == "multi-label" and spec["task_state"]["thresholds"] == clf.task_.thresholds_.tolist()
    module = importlib.util.spec_from_file_location(f"runner_ml_{head}", out / "runner.py")
    runner = importlib.util.module_from_spec(module)
    module.loader.exec_module(runner)
    pipe = runner.Pipeline(out)
    np.testing.assert_allclose(pipe.predict_proba(tests), want, atol=1e-5)
    assert [tuple(s) for s in pipe.predict(tests)] == clf.predict(tests).tolist()


def test_cli_predict_the_server_and_the_ray_batch_report_the_same_tags(taggers, tests, tmp_path):
    from wordsight.estimator.batch_predict import to_records

    clf, folder = taggers["logistic"]
    want, sets = clf.predict_proba(tests), clf.predict(tests)
    classes = [str(c) for c in clf.classes_]
    got = tag_reports(folder, tests, classes, tmp_path)
    for view in ("cli", "server", "ray"):
        np.testing.assert_allclose(got[view][0], want, atol=1e-5, err_msg=view)
        assert got[view][1] == sets.tolist(), view
    assert got["server_model"]["model"]["task"] == "multi-label"
    for res, p in zip(got["server_results"], want):
        assert {t["class"]: t["probability"] for t in res["tags"]} == pytest.approx(
            {c: p[j] for j, c in enumerate(classes) if c in res["predicted"]}, abs=1e-5)
    batch, cols = got["batch"]
    assert cols["predicted"].tolist() == ["|".join(s) for s in sets]
    records = to_records(cols, batch.classes, 3, batch.task)
    assert [tuple(rec.predicted) for rec in records] == sets.tolist()
