"""Export a saved wordsight model to ONNX: image encoder(s), text encoder and head as separate
files, plus ``pipeline.json`` and a standalone ``runner.py`` that reproduces the predictions."""
from __future__ import annotations

import shutil
from pathlib import Path

from ..encoders.onnx import OnnxTextEncoder, export_image_encoder, export_text_encoder, weights_digest
from ..storage.write import write_folder


def head_graph(clf):
    """The classifier's head as ONNX, traced from its torch form (:func:`.torch_graph.head_module`):
    ``features`` (B, F) [and ``prior`` (B, C)] -> ``logits`` (log-probabilities), ``probabilities``.
    A head whose torch form does not trace refuses, naming the heads that do."""
    from .._util.errors import NotSupportedError
    from .torch_graph import exportable_heads, head_module, to_onnx

    try:
        return to_onnx(head_module(clf), ["logits", "probabilities"], f"the {clf.head_name!r} head")
    except NotSupportedError as e:
        raise NotSupportedError(f"{e}; exportable heads: {', '.join(exportable_heads())}") from None


EXPORT_CONFIGS = ("pipeline.json", "ensemble.json")  # a single model's export, an ensemble's


def export_onnx(model_dir, out, *, text: bool = True) -> Path:
    """Write ``out/``: ``image_encoder*.onnx``, ``text_encoder.onnx`` + ``tokenizer/``,
    ``head.onnx``, ``pipeline.json`` and ``runner.py``. Returns ``out``."""
    from ..estimator import Classifier
    from ..estimator.ensemble import is_ensemble_folder

    check_export_target(out)  # before any work: a user's own folder is never written into
    if is_ensemble_folder(model_dir):  # members + combine.onnx (export.ensemble)
        from .ensemble_graph import export_ensemble

        return export_ensemble(model_dir, out, text=text)
    clf = Classifier.load(model_dir)
    if clf.fusion_.paired:
        raise ValueError(f"fusion {clf.fusion_name!r} cannot be exported: it reads each image's own text, and the "
                         "ONNX runner takes images only (its second head and the row routing are not exported)")
    if clf.tta:
        raise ValueError(f"tta={clf.tta}: test-time augmentation is not exported; refit with tta=0")
    from .torch_graph import prior_module, text_block_module, to_onnx

    head, prior, text_block = head_graph(clf), None, None  # a head that does not trace refuses, before any work
    if not clf.feature_dims_:
        raise ValueError(f"{model_dir}: fitted on a precomputed feature matrix, so it has no image encoder "
                         "to export; fit it on images")
    if clf.fusion_.prior:
        _check_reads_own_encoder(clf, clf.prior_.encoder, "prior")
        prior = to_onnx(prior_module(clf), ["prior"], "the language prior")
    if clf.fusion_.text:
        _check_reads_own_encoder(clf, clf.state_.probs_encoder, "text block")
        text_block = to_onnx(text_block_module(clf), ["text"], "the text block")
    def write(tmp: Path) -> dict:
        return _write_export(clf, tmp, head, prior, text_block, text)

    write_folder(out, write, config_name="pipeline.json", replaces=EXPORT_CONFIGS)
    return Path(out)


def _write_export(clf, out: Path, head, prior, text_block, text: bool) -> dict:
    """Write the ONNX files and the runner into ``out``; the spec (``pipeline.json`` unsealed)."""
    import onnx

    from .._version import __version__
    from ..encoders import get_config, load_model
    from ..encoders.tilebag import split
    from ..features.engines.batch import TINY_FRACTION, EmbedBatch
    from ..features.tilebag import is_bag, reader

    encoders = []
    names = clf.encoder_names
    for i, name in enumerate(names):
        enc = load_model(reader(name))  # a tile bag: its inner encoder, run on each tile
        file = "image_encoder.onnx" if len(names) == 1 else f"image_encoder_{i}.onnx"
        export_image_encoder(enc, out / file)
        # tiny images run at a smaller input size (CNNs) when the model was fitted that way
        small = EmbedBatch(enc, small_input=clf.small_input).small_config()
        fingerprint = get_config(name).fingerprint if is_bag(name) else enc.config.fingerprint
        encoders.append({"name": name, "file": file, "dim": clf.feature_dims_[name],
                         "fingerprint": fingerprint, "preprocessing": enc.config.preprocessing(),
                         "tiny": None if small is None else {
                             "max_side": enc.config.input_size // TINY_FRACTION,
                             "preprocessing": small.preprocessing()},
                         **({"tiles": {"grids": list(split(name.partition(":")[2])[0])}} if is_bag(name) else {})})
    onnx.save(head, str(out / "head.onnx"))
    spec = {"format": "wordsight-onnx", "format_version": 1, "library_version": __version__,
            "classes": [str(c) for c in clf.classes_], "fusion": clf.fusion_name,
            "image_encoders": encoders, "head": {"name": clf.head_name, "file": "head.onnx"}, "task": clf.task_.name}
    if clf.task_.state() is not None:  # a multi-label model's per-label thresholds (runner.predict)
        spec["task_state"] = clf.task_.state()
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
    shutil.copyfile(Path(__file__).with_name("runner.py"), out / "runner.py")
    return spec  # sealed by write_folder: every file's sha256 and its own; runner.read_spec verifies them


def check_export_target(out) -> None:
    """Refuse ``out`` when it is not absent, empty or an earlier export (``pipeline.json`` or
    ``ensemble.json`` of a wordsight format), as ``fit --out`` refuses a folder that is not a model."""
    from ..storage.read import ModelFolderError
    from ..storage.write import check_target

    try:
        check_target(out, EXPORT_CONFIGS, what="wordsight export")
    except ModelFolderError as e:
        raise ValueError(str(e)) from None


def _check_reads_own_encoder(clf, encoder, what: str) -> None:
    if encoder not in clf.encoder_names:
        raise ValueError(f"the {what} reads {encoder!r}, which is not one of the model's image encoders "
                         f"({', '.join(clf.encoder_names)}): not exported")


def prior_spec(clf, encoder_index: int) -> dict:
    """How the runner reads an image for the prior: the encoder, its full-size preprocessing and
    the view with the constants of :mod:`wordsight.features.views` (the standalone runner repeats
    the view's few lines; its numbers come from here, and a test holds the two equal)."""
    from ..encoders import get_config
    from ..features import views

    view = clf.prior_.view_
    return {"file": "prior.onnx", "encoder": encoder_index,
            "preprocessing": get_config(clf.prior_.encoder).preprocessing(),
            "view": {"name": view, "near_black": views.NEAR_BLACK, "dark_share": views.DARK_SHARE,
                     "frame": views.FRAME_WIDTH}}


__all__ = ["OnnxTextEncoder", "export_image_encoder", "export_onnx", "export_text_encoder",
           "head_graph", "weights_digest"]
