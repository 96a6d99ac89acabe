"""Export a saved wordsight model to ONNX: image encoder(s), text encoder and head as separate
files, plus ``pipeline.json`` and a standalone ``runner.py`` that reproduces the predictions."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..encoders.onnx import OnnxTextEncoder, export_image_encoder, export_text_encoder, weights_digest


def head_graph(clf):
    """The classifier's head as an ONNX graph: ``features`` (B, F) -> ``logits``, ``probabilities``.
    The nodes are the head's own (``Head.onnx_nodes``); a head without an ONNX form refuses."""
    import onnx
    from onnx import TensorProto, helper

    nodes, inits = clf.head_.onnx_nodes("features", "logits")
    nodes = [*nodes, helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
    n_cls = len(clf.classes_)
    graph = helper.make_graph(
        nodes, "wordsight_head",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", int(clf.n_features_in_)])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_cls]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", n_cls])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="wordsight")
    model.ir_version = min(model.ir_version, 9)
    onnx.checker.check_model(model)
    return model


def export_onnx(model_dir, out, *, text: bool = True) -> Path:
    """Write ``out/``: ``image_encoder*.onnx``, ``text_encoder.onnx`` + ``tokenizer/``,
    ``head.onnx``, ``pipeline.json`` and ``runner.py``. Returns ``out``."""
    import onnx

    from .._version import __version__
    from ..encoders import load_model
    from ..features.engines.batch import TINY_FRACTION, EmbedBatch
    from ..models import Classifier
    from ..models.ensemble import is_ensemble_folder

    if is_ensemble_folder(model_dir):  # members + combine.onnx (export.ensemble)
        from .ensemble import export_ensemble

        return export_ensemble(model_dir, out, text=text)
    clf = Classifier.load(model_dir)
    if clf.fusion_.paired:
        raise ValueError(f"fusion {clf.fusion_name!r} cannot be exported: it reads each image's own text, and the "
                         "ONNX runner takes images only (its second head and the row routing are not exported)")
    if clf.tta:
        raise ValueError(f"tta={clf.tta}: test-time augmentation is not exported; refit with tta=0")
    from .language_graph import mixed_head_graph, prior_graph, text_block_graph

    if clf.fusion_.prior:
        head, prior = mixed_head_graph(clf), prior_graph(clf)  # a head without an ONNX form refuses here
        _check_reads_own_encoder(clf, clf.prior_.encoder, "prior")
    else:
        head, prior = head_graph(clf), None  # refuses heads that have no ONNX form, before any work
    text_block = None
    if clf.fusion_.text:
        text_block = text_block_graph(clf)
        _check_reads_own_encoder(clf, clf.state_.probs_encoder, "text block")
    if not clf.feature_dims_:
        raise ValueError(f"{model_dir}: fitted on a precomputed feature matrix, so it has no image encoder "
                         "to export; fit it on images")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    encoders = []
    names = clf.encoder_names
    for i, name in enumerate(names):
        enc = load_model(name)
        file = "image_encoder.onnx" if len(names) == 1 else f"image_encoder_{i}.onnx"
        export_image_encoder(enc, out / file)
        # tiny images run at a smaller input size (CNNs) when the model was fitted that way
        small = EmbedBatch(enc, small_input=clf.small_input).small_config()
        encoders.append({"name": name, "file": file, "dim": clf.feature_dims_[name],
                         "fingerprint": enc.config.fingerprint, "preprocessing": enc.config.preprocessing(),
                         "tiny": None if small is None else {
                             "max_side": enc.config.input_size // TINY_FRACTION,
                             "preprocessing": small.preprocessing()}})
    onnx.save(head, str(out / "head.onnx"))
    spec = {"format": "wordsight-onnx", "format_version": 1, "library_version": __version__,
            "classes": [str(c) for c in clf.classes_], "fusion": clf.fusion_name,
            "image_encoders": encoders, "head": {"name": clf.head_name, "file": "head.onnx"}}
    if prior is not None:
        onnx.save(prior, str(out / "prior.onnx"))
        spec["prior"] = prior_spec(clf, names.index(clf.prior_.encoder))
    if text_block is not None:
        onnx.save(text_block, str(out / "text_block.onnx"))
        spec["text_block"] = {"file": "text_block.onnx", "encoder": names.index(clf.state_.probs_encoder),
                              "after_image_blocks": bool(clf.fusion_.image)}
    if text:
        text_enc = load_model(clf.text_model)
        export_text_encoder(text_enc, out)
        max_len = int((out / "tokenizer" / "wordsight_max_len.txt").read_text())
        spec["text_encoder"] = {"name": clf.text_model, "file": "text_encoder.onnx", "tokenizer": "tokenizer",
                                "dim": text_enc.config.dim, "max_length": max_len}
    (out / "pipeline.json").write_text(json.dumps(spec, indent=2))
    shutil.copyfile(Path(__file__).with_name("runner.py"), out / "runner.py")
    return out


def _check_reads_own_encoder(clf, encoder, what: str) -> None:
    if encoder not in clf.encoder_names:
        raise ValueError(f"the {what} reads {encoder!r}, which is not one of the model's image encoders "
                         f"({', '.join(clf.encoder_names)}): not exported")


def prior_spec(clf, encoder_index: int) -> dict:
    """How the runner reads an image for the prior: the encoder, its full-size preprocessing and
    the view with the constants of :mod:`wordsight.language.views` (the standalone runner repeats
    the view's few lines; its numbers come from here, and a test holds the two equal)."""
    from ..encoders import get_config
    from ..language import views

    view = clf.prior_.view_
    return {"file": "prior.onnx", "encoder": encoder_index,
            "preprocessing": get_config(clf.prior_.encoder).preprocessing(),
            "view": {"name": view, "near_black": views.NEAR_BLACK, "dark_share": views.DARK_SHARE,
                     "frame": views.FRAME_WIDTH}}


__all__ = ["OnnxTextEncoder", "export_image_encoder", "export_onnx", "export_text_encoder",
           "head_graph", "weights_digest"]
