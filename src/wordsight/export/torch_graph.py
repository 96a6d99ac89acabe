"""A saved model's maths after its encoders, as torch modules traced to ONNX (as timm's
``timm/utils/onnx.py`` exports): no graph is written node by node.

Each module calls the fitted objects' own torch forms, so the ONNX files compute what
``predict_proba`` computes by construction, and a parity test holds them equal:

- :func:`head_module`: ``features`` (B, F) float32 fused rows [and ``prior`` (B, C) float64] ->
  ``logits`` (log-probabilities) and ``probabilities``, float32:
  :meth:`~wordsight.estimator.state.FittedState.logits_torch` (the head's ``to_torch()``, then the
  prior mixed in or the few-shot probe);
- :func:`text_block_module`: ImageNet ``logits`` (B, K) -> the fused row's ``text`` block (B, D)
  float32: ``semantic_vectors_torch`` (ConSE), then :meth:`~wordsight.estimator.fusion.Fusion.fuse_torch`;
- :func:`prior_module`: [``logits``] and ``embedding`` of the prior's reading -> ``prior`` (B, C)
  float64, :meth:`~wordsight.zeroshot.pipeline.ZeroShotPipeline.log_proba_reading` in torch.

:func:`to_onnx` traces a module with a dynamic batch axis and runs the graph against the module
on the example and on a fresh batch: a torch form that does not trace (Python control flow on
tensor values, frozen into the graph by the trace, or an operator ONNX lacks) is refused with the
reason. The language part is computed in float64.
"""
from __future__ import annotations

import functools
import io
import warnings

import numpy as np
import torch
from torch import nn

from .._util.errors import NotSupportedError
from .._util.numerics import l2_normalize_torch

OPSET = 17
CHECK_ROWS = 7  # the fresh batch a traced graph is checked on (the examples have 3 rows)


def _const(value) -> torch.Tensor:
    return torch.from_numpy(np.array(value, np.float64))


def _example(**shapes) -> dict[str, torch.Tensor]:
    """Seeded example inputs (name -> (n, width)) to trace on: an export is reproducible."""
    g = torch.Generator().manual_seed(0)
    return {name: torch.randn(3, width, generator=g, dtype=dtype) for name, (width, dtype) in shapes.items()}


class _Head(nn.Module):
    def __init__(self, state, n_features: int, with_prior: bool):
        super().__init__()
        self.state = state
        self.example = _example(features=(n_features, torch.float32),
                                **({"prior": (len(state.classes), torch.float64)} if with_prior else {}))

    def forward(self, features, prior=None):
        log_p = self.state.head.log_output_torch(self.state.logits_torch(features.double(), prior))
        return log_p.float(), log_p.exp().float()


def head_module(clf) -> nn.Module:
    """``forward(features[, prior])`` -> (log-probabilities, probabilities), float32: the fitted
    state's torch form (``prior``, for ``fusion='prior'``, is the prior's float64 log-probabilities)."""
    return _Head(clf.state_, int(clf.n_features_in_), bool(clf.fusion_.prior))


class _TextBlock(nn.Module):
    def __init__(self, fusion, bank: np.ndarray):
        super().__init__()
        self.fusion = fusion
        self.register_buffer("bank", _const(bank))
        self.example = _example(logits=(len(bank), torch.float32))

    def forward(self, logits):
        from ..text.semantic import semantic_vectors_torch

        semantic = semantic_vectors_torch(torch.softmax(logits.double(), 1), self.bank)
        # the fusion's row with zero-width image blocks is its text block alone
        empty = {e: semantic[:, :0] for e in self.fusion.encoders}
        return self.fusion.fuse_torch(empty, semantic).float()


def text_block_module(clf) -> nn.Module:
    """``forward(logits)`` -> the fused row's text block (fusions ``text`` and ``concat``)."""
    return _TextBlock(clf.fusion_, np.asarray(clf.concept_bank().embeddings))


class _Prior(nn.Module):
    """Each way's text-space vectors -> its zero-shot classifier (L2 normalisation, centring on the
    training images, scaled cosines, log-softmax) -> the mean over the ways, renormalised."""

    def __init__(self, pipeline, dim: int):
        super().__init__()
        from ..text.concepts import default_bank
        from ..zeroshot.image_text import text_side, text_space_map

        text = text_side(pipeline.encoder, pipeline.text_model)
        self.ways = list(pipeline.ways_)
        self.conse = "conse" in self.ways  # the only way that reads the ImageNet logits
        self.scales, self.centred = [], []
        self.tags = bool(getattr(pipeline, "tags", False))  # a multi-label prior: each tag's log-odds against "none"
        for i, (way, zs) in enumerate(pipeline.ways_.items()):
            if way == "conse":
                self.register_buffer("bank", _const(default_bank(text).embeddings))
            elif way == "linear":
                self.register_buffer("text_map", _const(text_space_map(pipeline.encoder, text).matrix_))
            elif way != "direct":
                raise NotSupportedError(f"the zero-shot way {way!r} has no ONNX form")
            self.register_buffer(f"class_texts{i}", _const(np.asarray(zs.class_embeddings_).T))
            mean = getattr(zs, "image_mean_", None)
            self.centred.append(mean is not None)
            self.register_buffer(f"image_mean{i}", _const(0.0 if mean is None else mean))
            self.scales.append(float(zs.scale_))
        if self.tags:  # zeroshot.tags.tag_log_odds: each tag's shift to its reference quantile
            self.register_buffer("tag_offsets", _const(pipeline.offsets_))
        self.example = _example(**({"logits": (len(self.bank), torch.float32)} if self.conse else {}),
                                embedding=(dim, torch.float32))

    def _vectors(self, way, logits, embedding):
        from ..text.semantic import semantic_vectors_torch

        if way == "conse":
            return semantic_vectors_torch(torch.softmax(logits, 1), self.bank)
        return l2_normalize_torch(embedding @ self.text_map if way == "linear" else embedding)

    def forward(self, *reading):
        logits, embedding = (reading if self.conse else (None, *reading))
        logits = None if logits is None else logits.double()
        total = 0
        for i, way in enumerate(self.ways):
            x = l2_normalize_torch(self._vectors(way, logits, embedding.double()))
            if self.centred[i]:
                x = l2_normalize_torch(x - getattr(self, f"image_mean{i}"))
            z = torch.log_softmax(x @ getattr(self, f"class_texts{i}") * self.scales[i], 1)
            total = total + (z[:, :-1] - z[:, -1:] if self.tags else z)  # zeroshot.tags.tag_log_odds
        return total / len(self.ways) - self.tag_offsets if self.tags else torch.log_softmax(total / len(self.ways), 1)


def prior_module(clf) -> nn.Module:
    """``forward([logits, ]embedding)`` -> the prior's log-probabilities (float64); ``logits`` only
    when a way is ConSE."""
    return _Prior(clf.prior_, int(clf.feature_dims_[clf.prior_.encoder]))


def to_onnx(module: nn.Module, outputs: list[str], what: str, inputs: dict[str, torch.Tensor] | None = None):
    """``module`` traced on example ``inputs`` (name -> tensor, in forward's order; default: the
    module's ``example``) with a dynamic batch axis, as an ONNX model whose outputs are named
    ``outputs``. The graph must give the module's outputs on the example and on a fresh batch of
    another size (a trace freezes Python control flow on tensor values); else, or where ONNX lacks
    an operator, it is refused with the reason, ``what`` naming the module."""
    import onnx

    inputs = module.example if inputs is None else inputs
    with torch.no_grad():
        module.eval()(*inputs.values())  # builds torch forms made on first use, outside the trace
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings too: the check below decides
            torch.onnx.export(module, tuple(inputs.values()), buf, dynamo=False, opset_version=OPSET,
                              input_names=list(inputs), output_names=outputs,
                              dynamic_axes={n: {0: "batch"} for n in [*inputs, *outputs]})
    except torch.onnx.errors.OnnxExporterError as e:  # an operator ONNX lacks
        raise NotSupportedError(f"{what} has no ONNX form: {str(e).strip().splitlines()[0]}") from None
    model = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(model)
    g = torch.Generator().manual_seed(1)
    fresh = {n: torch.randn(CHECK_ROWS, *t.shape[1:], generator=g, dtype=t.dtype) for n, t in inputs.items()}
    for batch in (inputs, fresh):
        _check_against_torch(model, module, batch, outputs, what)
    return model


def _check_against_torch(model, module, inputs, outputs, what) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        want = module(*inputs.values())
    want = [w.numpy() for w in (want if isinstance(want, tuple) else (want,))]
    try:
        read = {i.name for i in sess.get_inputs()}  # an input the maths never reads is not in the graph
        got = sess.run(outputs, {n: t.numpy() for n, t in inputs.items() if n in read})
    except Exception as e:  # onnxruntime's own error types: a size frozen by the trace
        got, why = None, str(e).strip().splitlines()[0]
    if got is not None:
        worst = max(float(np.abs(a - b).max(initial=0.0)) for a, b in zip(got, want))
        if worst <= 1e-5:
            return
        why = f"differs from the torch form by {worst:.2g}"
    raise NotSupportedError(f"{what} has no ONNX form: its torch form does not trace (on {len(want[0])} rows "
                            f"the traced graph {why}; Python control flow on tensor values?)")


@functools.cache
def exportable_heads() -> tuple[str, ...]:
    """Names of the registered heads whose torch form traces to ONNX: each fitted on a small fixed
    problem and its ``to_torch()`` traced."""
    from ..estimator.heads import HEAD_CLASSES, make_head

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 4)
    X = rng.normal(size=(len(y), 4)) + 2.0 * np.eye(3, 4)[y]
    names = []
    for name in HEAD_CLASSES:
        try:
            to_onnx(make_head(name).fit(X, y, 3).to_torch(), ["logits"], name, {"features": torch.from_numpy(X[:3])})
        except NotSupportedError:
            continue
        names.append(name)
    return tuple(names)
