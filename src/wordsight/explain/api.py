"""``explain(model, images, method, target)``: heatmaps and the words behind each prediction."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ._pipeline import Subject, View, _py, as_subject

METHODS = ("gradcam", "gradcam++", "rollout", "lime", "shap", "tiles")
REPORT_LIME_SAMPLES = 60  # gradcam_overlay's budget where LIME stands in for Grad-CAM


@dataclass
class Explanation:
    """One image's explanation.

    ``heatmap`` (H, W) float32 at the original size: Grad-CAM/Grad-CAM++/rollout/tiles in [0, 1]; LIME
    and SHAP signed (each superpixel's weight or Shapley value, largest magnitude 1); zero outside the centre crop the
    model saw. ``overlay`` is the image with the map on top (PIL, original size). ``evidence``
    is JSON-able (classes, probabilities, concepts, descriptors, image/text shares, method facts).
    """

    path: str | None
    method: str
    target: object
    heatmap: np.ndarray
    overlay: Image.Image
    evidence: dict
    view_heatmap: np.ndarray = field(repr=False, default=None)  # the map over the model's input
    view: View = field(repr=False, default=None)

    def save(self, out_dir, stem: str | None = None) -> dict:
        """Write ``<stem>.<method>.png`` (overlay), ``<stem>.<method>.npy`` (raw map) and
        ``<stem>.<method>.json`` (evidence); the paths written."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = stem or (output_stem(self.path) if self.path else "image")
        tag = self.method.replace("+", "p")
        paths = {"overlay": out / f"{stem}.{tag}.png", "heatmap": out / f"{stem}.{tag}.npy",
                 "evidence": out / f"{stem}.{tag}.json"}
        self.overlay.save(paths["overlay"])
        np.save(paths["heatmap"], self.heatmap.astype(np.float32), allow_pickle=False)
        paths["evidence"].write_text(json.dumps(self.to_json(), indent=2))
        return {k: str(v) for k, v in paths.items()}

    def to_json(self) -> dict:
        """The explanation as plain JSON values (path, method, target and the evidence); a frame of a
        video, DICOM or TIFF has its file as ``path``, and ``frame`` and ``time_s`` as predict's rows."""
        from ..io.media_ref import frame_fields

        path, frame, time_s = frame_fields(self.path) if self.path is not None else (None, None, None)
        where = {"path": path} if frame is None else {"path": path, "frame": frame, "time_s": time_s}
        return {**where, "method": self.method, "target": _py(self.target), **self.evidence}


def output_stem(path) -> str:
    """The file-name stem of an explanation's outputs: the image's stem; a frame's is named by the
    frame (``clip.frame12`` for frame 12 of ``clip.mp4``)."""
    from ..io.media_ref import frame_fields

    file, frame, _ = frame_fields(path)
    stem = Path(os.fspath(file)).stem
    return stem if frame is None else f"{stem}.frame{frame}"


def explain_one(subject: Subject, image, method: str = "gradcam", target=None, *, lime_samples: int | None = None,
                lime_segments: int | None = None, rollout_discard: float = 0.0, sentence: bool = False,
                llm="local", top: int = 5, shap_evals: int | None = None) -> Explanation:
    from . import evidence as ev_mod
    from .render import from_original, overlay, seen_mask, to_original

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    view = subject.read(image)
    tidx = subject.class_index(target) if target is not None else None
    proba = subject.proba(view)  # what predict_proba reports for this image
    if tidx is None:
        tidx = int(np.argmax(proba))
    from .tile_bags import bag_explanation, mil_evidence

    tiled = bag_explanation(subject, view, tidx, method)  # a tile bag's gradcam or tile map: None elsewhere
    if tiled is None:
        vmap, facts = _view_map(subject, view, tidx, method, lime_samples, lime_segments, rollout_discard, shap_evals)
        heat, seen = to_original(vmap, view), seen_mask(view)
    else:
        heat, seen, facts = tiled
        vmap = from_original(heat, view)  # over the view too: the deletion check ranks its pixels
    evidence = ev_mod.evidence(subject, view, proba, tidx, top)
    tiles = mil_evidence(subject, view, tidx)
    if tiles is not None:
        evidence["tiles"] = tiles
    evidence["encoder"] = subject.encoder_name
    evidence["method_facts"] = facts
    evidence["heatmap_focus"] = ev_mod.focus(vmap if tiled is None else heat)
    evidence["view_box"] = [round(float(v), 1) for v in view.box]
    if sentence:
        evidence["sentence"] = ev_mod.write_sentence(evidence, llm)
    return Explanation(view.name, method, _py(subject.classes[tidx]), heat,
                       overlay(view.original, heat, seen), evidence, vmap, view)


def _view_map(subject, view, tidx, method, lime_samples, lime_segments, rollout_discard, shap_evals):
    """(the map over the explained encoder's view, the method's facts)."""
    facts: dict = {}
    if method in ("gradcam", "gradcam++"):
        from .cam import cam

        vmap = cam(subject, view, tidx, method)
        facts["layer"] = "final feature map (forward_features)"
    elif method == "rollout":
        from .rollout import rollout

        vmap = rollout(subject, view, discard_ratio=rollout_discard)
        facts.update(class_agnostic=True, discard_ratio=rollout_discard)
    else:
        from .tile_inputs import perturbing

        with perturbing(subject, view):  # a tile bag's tiles: cut from the image with the view's changes
            return _superpixel_map(subject, view, tidx, method, lime_samples, lime_segments, shap_evals)
    return vmap, facts


def _superpixel_map(subject, view, tidx, method, lime_samples, lime_segments, shap_evals):
    """LIME's or SHAP's map over the view and facts."""
    from .shapley import DEFAULT_EVALS, shap_map
    from .superpixels import DEFAULT_SAMPLES, DEFAULT_SEGMENTS, lime_map

    if method == "lime":
        return lime_map(subject, view, tidx, DEFAULT_SAMPLES if lime_samples is None else lime_samples,
                        lime_segments or DEFAULT_SEGMENTS)
    return shap_map(subject, view, tidx, DEFAULT_EVALS if shap_evals is None else shap_evals,
                    lime_segments or DEFAULT_SEGMENTS)


def explain(model, images, method: str = "gradcam", target=None, *, encoder: str | None = None,
            lime_samples: int | None = None, lime_segments: int | None = None, rollout_discard: float = 0.0,
            sentence: bool = False, llm="local", top: int = 5, shap_evals: int | None = None) -> list[Explanation]:
    """Explain ``model``'s prediction on each image.

    ``model``: a fitted :class:`wordsight.Classifier`, a folder saved by ``Classifier.save``, or an
    encoder name (its ImageNet head is explained). ``images``: paths, PIL images, bytes or uint8
    arrays (one or a list), or listed samples: ``open_source("clip.mp4").samples`` explains each
    sampled frame of a video, DICOM or multi-page TIFF as ``predict_proba`` reads it. ``method``:
    ``gradcam``, ``gradcam++`` (CNN encoders, through the whole model), ``rollout`` (``hf:`` ViT
    encoders; class-agnostic), ``lime`` (any model;
    ``lime_samples`` bounds its cost, default 200) or ``shap`` (any model: kernel SHAP over the
    same superpixels; ``shap_evals`` bounds its model calls, default 200) or ``tiles`` (a model with a
    tile bag and the mil head: each tile's pooling weight for the class on its rectangle; Grad-CAM
    of such a model is taken inside each tile, :mod:`wordsight.explain.tile_bags`). ``target``: the class
    to explain (default: the predicted one). ``encoder``: which of several encoders' pixels to
    explain. ``sentence``: also ask an LLM backend (``llm``: ``local``, ``openai``, ``none`` or a
    backend object) for one or two sentences written from the evidence; off by default. An unreadable image raises
    :class:`wordsight.io.images.ImageError`.
    """
    subject = as_subject(model, encoder)
    if isinstance(images, (str, os.PathLike, bytes, bytearray, Image.Image)) or (
            isinstance(images, np.ndarray) and images.ndim in (2, 3) and images.dtype == np.uint8):
        images = [images]
    return [explain_one(subject, im, method, target, lime_samples=lime_samples, lime_segments=lime_segments,
                        rollout_discard=rollout_discard, sentence=sentence, llm=llm, top=top,
                        shap_evals=shap_evals) for im in images]


def gradcam_overlay(model, path, out=None, target=None, method: str = "gradcam") -> str:
    """Write the heatmap overlay of ``path`` as a PNG and return its path (for reports).

    ``out``: the PNG path or a folder (default: the wordsight cache's ``explain/`` folder). CNN
    encoders get Grad-CAM, ViT encoders attention rollout, and models neither reaches (a
    random-forest head, the pixels-32 encoder) LIME with a small sample budget.
    """
    from .rollout import has_attention

    subject = as_subject(model)
    encoder = subject.encoder()
    if method in ("gradcam", "gradcam++") and not hasattr(encoder, "forward_features"):
        method = "rollout" if has_attention(encoder) else "lime"
    try:
        e = explain_one(subject, path, method, target, lime_samples=REPORT_LIME_SAMPLES)
    except ValueError as err:
        if "not differentiable" not in str(err):
            raise
        e = explain_one(subject, path, "lime", target, lime_samples=REPORT_LIME_SAMPLES)
    if out is None:
        from ..features.cache import default_cache_dir

        out = default_cache_dir() / "explain"
    out = Path(out)
    if out.suffix.lower() != ".png":
        out.mkdir(parents=True, exist_ok=True)
        out = out / f"{Path(os.fspath(path)).stem}.{e.method.replace('+', 'p')}.png"
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
    e.overlay.save(out)
    return str(out)
