"""Every head's forms of its maths on small fixed data: the numpy ``logits``, the torch module
explanations run and the ONNX graph the export traces from it give the same probabilities; a head
whose torch form does not trace says so. (The end-to-end versions, through real images, the CLI and the
server, are in tests/parity/.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from wordsight._util.errors import NotSupportedError
from wordsight.estimator.heads import HEADS, KNNHead, head_taking

PARAMS = {"mlp": {"epochs": 2, "min_steps": 20, "hidden": (8,)}, "random_forest": {"n_estimators": 4},
          "knn": {"k": 3, "class_weight": "balanced"}}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    y = np.array([0] * 8 + [1] * 5 + [2] * 3)
    X = rng.normal(size=(len(y), 6)) + 2.0 * np.eye(3, 6)[y]
    return X, y, rng.normal(size=(9, 6)) * 1.5


@pytest.mark.parametrize("name", HEADS)
def test_torch_form_equals_numpy_logits(data, name):
    X, y, Xq = data
    head = head_taking(name, C=0.5, **PARAMS.get(name, {})).fit(X, y, 3)
    assert head.n_classes == 3
    with torch.no_grad():
        z = head.to_torch()(torch.from_numpy(Xq)).numpy()
    want = head.predict_proba(Xq)
    e = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(1, keepdims=True), want, atol=1e-9)
    assert not np.allclose(want, 1 / 3)  # a uniform answer would pass the comparison trivially


@pytest.mark.parametrize("name", HEADS)
def test_onnx_form_traced_from_torch_equals_numpy_probabilities_or_refuses(data, name):
    ort = pytest.importorskip("onnxruntime")
    from wordsight.export.torch_graph import exportable_heads, to_onnx

    X, y, Xq = data
    head = head_taking(name, C=0.5, **PARAMS.get(name, {})).fit(X, y, 3)
    try:
        model = to_onnx(head.to_torch(), ["logits"], name, {"features": torch.from_numpy(X[:3])})
    except NotSupportedError as e:
        assert name not in exportable_heads() and f"{name} has no ONNX form" in str(e)
        assert name in ("knn", "random_forest")
        return
    assert name in exportable_heads()
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    z = sess.run(["logits"], {"features": Xq})[0]  # the torch form's float64 input, traced batch of 3, run on 9
    e = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(1, keepdims=True), head.predict_proba(Xq), atol=1e-9)


def test_the_exportable_heads_are_those_whose_torch_form_traces():
    from wordsight.export.torch_graph import exportable_heads

    assert exportable_heads() == HEADS == ("logistic", "svm", "mlp", "knn", "random_forest", "mil")


def test_traced_knn_takes_tied_neighbours_in_training_order_as_numpy_does():
    ort = pytest.importorskip("onnxruntime")
    from wordsight.export.torch_graph import to_onnx

    # rows 0 and 1 are the same text under two labels: with k=1 the first in training order decides
    X = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    head = KNNHead(k=1).fit(X, np.array([1, 0, 2, 2]), 3)
    Xq = np.array([[2.0, 0.0], [0.1, 1.0], [3.0, 0.1]])
    sess = ort.InferenceSession(to_onnx(head.to_torch(), ["logits"], "knn", {"features": torch.from_numpy(Xq)})
                                .SerializeToString(), providers=["CPUExecutionProvider"])
    z = sess.run(["logits"], {"features": Xq})[0]
    assert z.argmax(1).tolist() == head.logits(Xq).argmax(1).tolist() == [1, 2, 1]
    np.testing.assert_allclose(z, head.logits(Xq), atol=1e-12)
