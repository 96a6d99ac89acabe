"""One computation for the mil head with a hidden layer (``MILHead(hidden=H)``, issue 24) on a real
encoder's tile bag (``tilebag:2:efficientnet-lite0``): the torch form, the ONNX export's runner and
a saved-and-loaded folder report what ``predict_proba`` computes, within 1e-5."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from wordsight.estimator import Classifier
from wordsight.estimator.heads import MILHead
from wordsight.io.sources import open_source

from ..conftest import first_mosaics

ENC = "efficientnet-lite0"
BAG = f"tilebag:2:{ENC}"


def test_the_hidden_layer_tagger_is_one_computation_in_torch_onnx_and_a_loaded_folder(mosaic_manifests, tmp_path):
    pytest.importorskip("onnxruntime")
    from wordsight.export import export_onnx

    first_mosaics(mosaic_manifests[0], 48, tmp_path / "train.csv")
    clf = Classifier(encoders=(ENC, BAG), task="multi-label", head=MILHead(hidden=32)).fit(tmp_path / "train.csv")
    head = clf.state_.head
    assert head.info["hidden"] == 32 and head.info["bag"] == [1280, 4, 1280] and head.arrays["W1"].shape == (32, 1280)
    clf.save(tmp_path / "m")
    tests = open_source(mosaic_manifests[1]).paths[:6]
    want = clf.predict_proba(tests)
    assert want.shape == (6, 10) and want.std() > 0.05
    np.testing.assert_allclose(Classifier.load(tmp_path / "m").predict_proba(tests), want, atol=1e-12)
    F = clf.featurize(tests)
    with torch.no_grad():
        z = clf.state_.logits_torch(torch.from_numpy(np.asarray(F.matrix, np.float64)))
    np.testing.assert_allclose(torch.sigmoid(z).numpy(), want, atol=1e-9)
    out = export_onnx(tmp_path / "m", tmp_path / "onnx", text=False)
    module = importlib.util.spec_from_file_location("runner_mil_hidden", out / "runner.py")
    runner = importlib.util.module_from_spec(module)
    module.loader.exec_module(runner)
    np.testing.assert_allclose(runner.Pipeline(out).predict_proba(tests), want, atol=1e-5)
