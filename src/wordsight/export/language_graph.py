"""The language layer of a saved model as ONNX graphs: the fused row's text block and the prior.

``text_block.onnx`` (fusions ``text`` and ``concat``) is the fused row's text block: the ImageNet
``logits`` of the encoder that has an ImageNet head, read as the image features are -> ConSE ->
L2 normalisation -> times ``text_weight`` (:class:`~wordsight.models.fusion.Fusion`): ``text``.

``prior.onnx`` is :meth:`~wordsight.language.pipeline.ZeroShotPipeline.log_proba_reading`: the
prior encoder's ``logits`` and ``embedding`` of the prior's view (at full input size) -> each
way's text-space vector (ConSE over the ImageNet probabilities, the linear map, or a joint
model's own embedding) -> the zero-shot classifier of that way (L2 normalisation, centring on the
training images, scaled cosines, log-softmax) -> the mean over the ways, renormalised: ``prior``.

:func:`mixed_head_graph` is the head with that prior mixed in, as
:meth:`~wordsight.models.state.FittedState.logits` does it: the few-shot probe
(``a * log_softmax(prior) + X W'^T + b'``) or :class:`~wordsight.models.prior.PriorMix`. The
language part is computed in float64 like the numpy path; the arrays come from the fitted
objects, so nothing here repeats a fit.
"""
from __future__ import annotations

import numpy as np

OPSET = 17
EPS = 1e-12  # l2_normalize's floor on a row's norm


class _Graph:
    """A small builder: named constants and nodes, each output a fresh name."""

    def __init__(self):
        from onnx import helper

        self.helper, self.nodes, self.inits, self._n = helper, [], [], 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, stem: str, value, dtype=np.float64) -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(np.asarray(value, dtype)), name))
        return name

    def op(self, kind: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        out = out or self.name(kind.lower())
        self.nodes.append(self.helper.make_node(kind, inputs, [out], **attrs))
        return out

    def l2(self, x: str) -> str:
        norm = self.op("Sqrt", [self.op("ReduceSumSquare", [x], axes=[1], keepdims=1)])
        return self.op("Div", [x, self.op("Max", [norm, self.const("eps", EPS)])])

    def to_double(self, x: str) -> str:
        from onnx import TensorProto

        return self.op("Cast", [x], to=TensorProto.DOUBLE)


def _conse(g: _Graph, logits: str, bank: np.ndarray, top_t: int) -> str:
    """ConSE: the top-``top_t`` ImageNet probabilities, renormalised, mix the concepts' text vectors."""
    probs = g.op("Softmax", [logits], axis=1)
    t = min(int(top_t), bank.shape[0])
    top = g.name("top")
    idx = g.name("top_index")
    g.nodes.append(g.helper.make_node("TopK", [probs, g.const("k", [t], np.int64)], [top, idx], axis=1))
    total = g.op("ReduceSum", [top, g.const("axis", [1], np.int64)], keepdims=1)
    w = g.op("Div", [top, g.op("Max", [total, g.const("eps", EPS)])])
    rows = g.op("Gather", [g.const("concepts", bank), idx], axis=0)  # (B, t, D)
    mixed = g.op("Mul", [rows, g.op("Unsqueeze", [w, g.const("axis", [2], np.int64)])])
    return g.l2(g.op("ReduceSum", [mixed, g.const("axis", [1], np.int64)], keepdims=0))


def _way_vectors(g: _Graph, pipeline, way: str, logits: str, embedding: str) -> str:
    from ..language.concepts import default_bank
    from ..language.images import text_side, text_space_map
    from ..language.semantic import DEFAULT_TOP_T

    text = text_side(pipeline.encoder, pipeline.text_model)
    if way == "conse":
        return _conse(g, logits, np.asarray(default_bank(text).embeddings), DEFAULT_TOP_T)
    if way == "linear":
        matrix = text_space_map(pipeline.encoder, text).matrix_
        return g.l2(g.op("MatMul", [embedding, g.const("text_map", matrix)]))
    if way == "direct":
        return g.l2(embedding)
    raise ValueError(f"the zero-shot way {way!r} has no ONNX form")


def _zero_shot(g: _Graph, zs, vectors: str) -> str:
    """:meth:`ZeroShotClassifier.predict_log_proba` on text-space vectors."""
    x = g.l2(vectors)
    mean = getattr(zs, "image_mean_", None)
    if mean is not None:
        x = g.l2(g.op("Sub", [x, g.const("image_mean", mean)]))
    cos = g.op("MatMul", [x, g.const("class_texts", np.asarray(zs.class_embeddings_).T)])
    return g.op("LogSoftmax", [g.op("Mul", [cos, g.const("scale", float(zs.scale_))])], axis=1)


def text_block_graph(clf):
    """``logits`` (B, K) -> ``text`` (B, D) float32, the fused row's text block: ``text_weight``
    times the L2-normalised ConSE vector over the model's concept bank."""
    import onnx
    from onnx import TensorProto, helper

    from ..language.semantic import DEFAULT_TOP_T

    g = _Graph()
    vectors = _conse(g, g.to_double("logits"), np.asarray(clf.concept_bank().embeddings), DEFAULT_TOP_T)
    block = g.op("Mul", [g.l2(vectors), g.const("text_weight", clf.fusion_.text_weight)])
    g.op("Cast", [block], "text", to=TensorProto.FLOAT)
    graph = helper.make_graph(g.nodes, "wordsight_text_block",
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "concepts"])],
                              [helper.make_tensor_value_info("text", TensorProto.FLOAT, ["batch", "dim"])], g.inits)
    return _model(onnx, helper, graph)


def prior_graph(clf):
    """``logits`` (B, K; only when a way is ConSE) and ``embedding`` (B, D) of the prior's reading
    -> ``prior`` (B, C) float64 log-probabilities, equal to ``clf.prior_.log_proba_reading``."""
    import onnx
    from onnx import TensorProto, helper

    pipeline = clf.prior_
    g = _Graph()
    conse = "conse" in pipeline.ways_  # the only way that reads the ImageNet logits
    logits = g.to_double("logits") if conse else None
    embedding = g.to_double("embedding")
    ways = [_zero_shot(g, zs, _way_vectors(g, pipeline, way, logits, embedding)) for way, zs in pipeline.ways_.items()]
    total = ways[0]
    for w in ways[1:]:
        total = g.op("Add", [total, w])
    mean = g.op("Div", [total, g.const("n_ways", float(len(ways)))])
    g.op("LogSoftmax", [mean], "prior", axis=1)
    n_cls = len(clf.classes_)
    inputs = ([helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "concepts"])] if conse else []) + [
        helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", "dim"])]
    graph = helper.make_graph(g.nodes, "wordsight_prior", inputs,
                              [helper.make_tensor_value_info("prior", TensorProto.DOUBLE, ["batch", n_cls])], g.inits)
    return _model(onnx, helper, graph)


def mixed_head_graph(clf):
    """``features`` (B, F) float32 and ``prior`` (B, C) float64 -> ``logits`` (the mixed
    log-probabilities) and ``probabilities``, as ``FittedState.logits`` computes them."""
    import onnx
    from onnx import TensorProto, helper

    state, g = clf.state_, _Graph()
    prior = "prior"
    if state.probe is not None:
        W, b, a = state.probe.linear()
        scores = g.op("Add", [g.op("MatMul", [g.to_double("features"), g.const("probe_W", W.T)]), g.const("probe_b", b)])
        z = g.op("Add", [g.op("Mul", [g.op("LogSoftmax", [prior], axis=1), g.const("strength", a)]), scores])
    else:
        nodes, inits = state.head.onnx_nodes("features", "head_logits")  # refuses heads without an ONNX form
        g.nodes += nodes
        g.inits += inits
        mix, head = state.mix, g.to_double("head_logits")
        if mix is None or mix.weight == 0:
            z = head
        else:
            z = g.op("Add", [
                g.op("LogSoftmax", [g.op("Mul", [head, g.const("head_temperature", mix.head_temperature)])], axis=1),
                g.op("Mul", [g.op("LogSoftmax", [g.op("Mul", [prior, g.const("temperature", mix.temperature)])], axis=1),
                             g.const("weight", mix.weight)])])
    log_p = g.op("LogSoftmax", [z], axis=1)
    g.op("Cast", [log_p], "logits", to=TensorProto.FLOAT)
    g.op("Cast", [g.op("Softmax", [log_p], axis=1)], "probabilities", to=TensorProto.FLOAT)
    n_cls = len(clf.classes_)
    inputs = [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", int(clf.n_features_in_)]),
              helper.make_tensor_value_info("prior", TensorProto.DOUBLE, ["batch", n_cls])]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", n_cls]) for n in ("logits", "probabilities")]
    return _model(onnx, helper, helper.make_graph(g.nodes, "wordsight_head_with_prior", inputs, outputs, g.inits))


def _model(onnx, helper, graph):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="wordsight")
    model.ir_version = min(model.ir_version, 9)
    onnx.checker.check_model(model)
    return model
