"""Every head's three forms of its maths on small fixed data: the numpy ``logits``, the torch
module explanations run and the ONNX nodes the export writes give the same probabilities; a head
that has no ONNX form says so. (The end-to-end versions, through real images, the CLI and the
server, are in tests/parity/.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from wordsight._util.errors import NotSupportedError
from wordsight.models.heads import HEADS, head_taking

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
def test_onnx_form_equals_numpy_probabilities_or_refuses(data, name):
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    X, y, Xq = data
    head = head_taking(name, C=0.5, **PARAMS.get(name, {})).fit(X, y, 3)
    try:
        nodes, inits = head.onnx_nodes("features", "logits")
    except NotSupportedError as e:
        assert name in ("knn", "random_forest") and f"the {name!r} head has no ONNX form" in str(e)
        assert "logistic, svm, mlp" in str(e)  # the exportable heads, from the registry
        return
    nodes = [*nodes, helper.make_node("Softmax", ["logits"], ["p"], axis=1)]
    graph = helper.make_graph(nodes, "h", [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 6])],
                              [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 9)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(["p"], {"features": Xq.astype(np.float32)})[0]
    np.testing.assert_allclose(got, head.predict_proba(Xq), atol=1e-5)
