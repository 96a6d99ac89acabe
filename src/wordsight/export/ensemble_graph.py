"""ONNX export of an ensemble (``fit --search``): each member exported as a saved Classifier is
(``members/<i>/``: encoders + head + ``pipeline.json``), ``combine.onnx`` (the members'
probabilities side by side -> the ensemble's: a weighted sum for a vote, the logistic meta-head
and a softmax for a stack), ``ensemble.json`` and ``ensemble_runner.py``
(``EnsemblePipeline(DIR).predict_proba(paths)``: numpy, Pillow, onnxruntime). An ensemble
exports only where every member does; otherwise the member and its reason are named."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np


def combine_graph(kind: str, weights, meta, n_members: int, n_classes: int):
    """``member_probabilities`` (B, m * k) -> ``probabilities`` (B, k), as ``models.ensemble.combine``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if kind == "vote":
        w = np.asarray(weights, np.float64) / np.sum(weights)
        V = np.concatenate([wi * np.eye(n_classes) for wi in w]).astype(np.float32)
        nodes = [helper.make_node("MatMul", ["member_probabilities", "V"], ["probabilities"])]
        inits = [numpy_helper.from_array(V, "V")]
    else:
        nodes = [helper.make_node("Gemm", ["member_probabilities", "W", "b"], ["logits"], transB=1),
                 helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
        inits = [numpy_helper.from_array(np.asarray(meta["coef"], np.float32), "W"),
                 numpy_helper.from_array(np.asarray(meta["intercept"], np.float32), "b")]
    graph = helper.make_graph(
        nodes, "wordsight_ensemble",
        [helper.make_tensor_value_info("member_probabilities", TensorProto.FLOAT, ["batch", n_members * n_classes])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", n_classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="wordsight")
    model.ir_version = min(model.ir_version, 9)
    onnx.checker.check_model(model)
    return model


def export_ensemble(model_dir, out, *, text: bool = True) -> Path:

    from ..estimator.ensemble import Ensemble
    from ..estimator.saved.persistence import read_config
    from ..storage.write import write_folder
    from . import EXPORT_CONFIGS

    ens = Ensemble.load(model_dir)
    names = read_config(model_dir)["members"]
    write_folder(out, lambda tmp: _write_ensemble(ens, names, model_dir, tmp, text),
                 config_name="ensemble.json", replaces=EXPORT_CONFIGS)
    return Path(out)


def _write_ensemble(ens, names: list[str], model_dir, out: Path, text: bool) -> dict:
    """Every member's export, the combining graph and the runners in ``out``; the unsealed spec."""
    import onnx

    from .._version import __version__
    from . import export_onnx

    for i, name in enumerate(names):
        try:
            export_onnx(Path(model_dir) / name, out / name, text=text and i == 0)
        except (ValueError, NotImplementedError) as e:
            raise ValueError(f"member {name} ({ens.describe_members()[i]}) cannot be exported, so neither can "
                             f"the ensemble: {e}") from None
    k = len(ens.classes_)
    onnx.save(combine_graph(ens.kind, ens.weights, ens.meta, len(names), k), str(out / "combine.onnx"))
    spec = {"format": "wordsight-onnx-ensemble", "format_version": 1, "library_version": __version__,
            "classes": [str(c) for c in ens.classes_], "kind": ens.kind, "members": names,
            "member_names": ens.describe_members(), "combine": "combine.onnx"}
    shutil.copyfile(Path(__file__).with_name("runner.py"), out / "runner.py")
    shutil.copyfile(Path(__file__).with_name("ensemble_runner.py"), out / "ensemble_runner.py")
    return spec  # sealed by write_folder: every file's sha256 and its own; ensemble_runner verifies them
