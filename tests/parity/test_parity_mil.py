"""One computation for the multiple-instance tagger (issue 24: ``tilebag:2:<encoder>`` + the mil
head): its torch form, the ONNX export's runner (each tile cut from one decode), the CLI's
predict, the server's /v1/predict and the Ray batch callable report what ``predict_proba``
computes, within 1e-5, on 28-px-tile mosaics and on photos."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from wordsight.io.sources import open_source

from ..conftest import tag_reports


@pytest.fixture(scope="module")
def tagger(mil_tagger):
    return mil_tagger


@pytest.fixture(scope="module")
def tests(mosaic_manifests, photo_folder):
    return open_source(mosaic_manifests[1]).paths[:6] + open_source(photo_folder).paths[:2]  # tiny and photo-sized


def test_the_torch_form_and_the_onnx_runner_give_predict_proba(tagger, tests, tmp_path):
    pytest.importorskip("onnxruntime")
    from wordsight.export import export_onnx

    clf, folder = tagger
    want = clf.predict_proba(tests)
    assert want.shape == (8, 10) and want.std() > 0.05
    F = clf.featurize(tests)
    with torch.no_grad():
        z = clf.state_.logits_torch(torch.from_numpy(np.asarray(F.matrix, np.float64)))
    np.testing.assert_allclose(torch.sigmoid(z).numpy(), want, atol=1e-9)
    out = export_onnx(folder, tmp_path / "onnx", text=False)
    spec = json.loads((out / "pipeline.json").read_text())
    assert spec["image_encoders"][1]["tiles"] == {"grids": [2]} and spec["head"]["name"] == "mil"
    module = importlib.util.spec_from_file_location("runner_mil", out / "runner.py")
    runner = importlib.util.module_from_spec(module)
    module.loader.exec_module(runner)
    pipe = runner.Pipeline(out)
    np.testing.assert_allclose(pipe.features(tests), F.matrix, atol=1e-5)
    np.testing.assert_allclose(pipe.predict_proba(tests), want, atol=1e-5)
    assert [tuple(s) for s in pipe.predict(tests)] == clf.predict(tests).tolist()


def test_cli_predict_the_server_and_the_ray_batch_report_the_same_tags(tagger, tests, tmp_path):
    clf, folder = tagger
    want, sets = clf.predict_proba(tests), clf.predict(tests)
    got = tag_reports(folder, tests, [str(c) for c in clf.classes_], tmp_path)
    for view in ("cli", "server", "ray"):
        np.testing.assert_allclose(got[view][0], want, atol=1e-5, err_msg=view)
        assert got[view][1] == sets.tolist(), view
