"""The path from an image to class scores, rebuilt in torch so that gradients reach the pixels.

What gets explained is a :class:`Subject`: a trained :class:`wordsight.Classifier` (encoders ->
fusion -> head [-> language prior]) or a bare encoder's ImageNet head. Both offer:

- ``read(image)``: the image as the explained encoder sees it, read by feature extraction's own
  code (regular files only, JPEG draft decoding, tiny images at the reduced input size: see
  :func:`model_view`), and the box of the original image that this view covers;
- ``proba(view)``: the model's probabilities of the image: for a trained model what
  ``predict_proba`` reports (its featurize path: the feature cache, the prior's own reading,
  test-time augmentation), never a re-derivation;
- ``scores(inputs)``: torch, differentiable: per-encoder input tensors (``view_inputs(view)`` for
  the image itself) -> (B, n_classes) scores whose softmax is the model's probabilities
  (Grad-CAM, Grad-CAM++);
- ``proba_views(views)``: numpy, the model's own prediction code on a batch of perturbed views
  (LIME, the deletion check): every head, including the non-differentiable ones, works there.

The torch path is made of each piece's own torch form (``Fusion.fuse_torch``, ``Head.to_torch()``,
``PriorMix.torch``, ``semantic_vectors_torch``): nothing here re-derives the maths, and a parity
test holds it equal to ``predict_proba``. ConSE's top-T selection is piecewise constant, so
within it the semantic vector is a smooth function of the ImageNet softmax
and gradients flow through the text block too. The language prior (``fusion="prior"``) reads
its own view of the image (e.g. inverted, at full input size): it is computed with the model's
own code and enters the scores as a constant (``inputs[PRIOR_KEY]``: for the image itself the
very log-probabilities ``predict_proba`` mixed in), so gradient maps show the image head's share
of the decision, and LIME and the deletion check, which re-run the whole model on perturbed
images, include the prior.
"""
from __future__ import annotations

import dataclasses
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .._util.deadlines import active as deadline_active
from .._util.deadlines import check as check_deadline
from ..encoders.preprocess import preprocess, to_tensor_array
from ..encoders.tilebag import instances, is_bag
from ..io.images import ImageError
from .boxes import view_box  # noqa: F401  (where a view lies on its image; imported from here too)

# Views per model call while a deadline is set (a server request): the work stops within one call,
# about 0.1 s on two cores for a CNN, instead of one LIME batch of 32 (seconds on a loaded machine).
DEADLINE_STEP = 8
PRIOR_KEY = "language-prior"  # inputs() entry holding the prior's log-probabilities
# inputs() entry holding the images' own text vectors (fusion paired / late); without it the
# images have no text, as for predict_proba on images alone: the image part of the model decides.
PAIRED_KEY = "paired-text"


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


def image_bytes(image) -> tuple[bytes, str | None]:
    """The encoded bytes of an image given as a path, bytes, a file object, a PIL image or a uint8
    array, and its name (None for an image in memory). In-memory pixels are written as PNG
    (lossless), so every verb reads them through the same decoder."""
    from ..features.engines.batch import read_bytes
    from ..io.sources import Sample

    if isinstance(image, (bytes, bytearray)):
        return bytes(image), None
    if isinstance(image, io.IOBase):
        return image.read(), getattr(image, "name", None)
    if isinstance(image, (Image.Image, np.ndarray)):
        pil = image if isinstance(image, Image.Image) else Image.fromarray(
            (image if image.ndim == 3 else np.stack([image] * 3, -1)).astype(np.uint8))
        buf = io.BytesIO()
        pil.convert("RGB").save(buf, "PNG")
        return buf.getvalue(), getattr(image, "filename", None) or None
    path = os.fspath(image)
    data, err = read_bytes(Sample(path))
    if data is None:
        raise ImageError(f"{path}: {err}")
    return data, path


def model_view(data: bytes, encoder: str, small_input="auto", window=None):
    """(the uint8 view (S, S, 3) that ``encoder`` sees of the image bytes ``data``, the config that
    made it). The pixels are feature extraction's own (``EmbedBatch.decode_for_model``, what
    ``Classifier.model_input`` returns): JPEG draft decoding, and tiny images at the reduced input
    size ``small_input``; the normalisation is undone exactly (uint8 values are recovered to the
    integer), so ``to_tensor_array(view, cfg)`` is the model input again. ``window``: a 16-bit or
    float image's (min, max), as ``--window`` gives it."""
    from ..features.engines.batch import EmbedBatch

    fn = EmbedBatch(encoder, engine="torch", small_input=small_input)
    return _unnormalised(fn, *fn.decode_for_model(data, window))


def frame_view(sample, pixels: np.ndarray, encoder: str, small_input="auto"):
    """:func:`model_view` of a decoded frame (H x W x 3 uint8) of a video, DICOM or TIFF ``sample``:
    the input extraction makes of it (``EmbedBatch.frame_input``)."""
    from ..features.engines.batch import EmbedBatch

    fn = EmbedBatch(encoder, engine="torch", small_input=small_input)
    return _unnormalised(fn, *fn.frame_input(sample, pixels))


def _unnormalised(fn, x, err):
    if x is None:
        raise ImageError(err)
    cfg = fn.config if x.shape[-1] == fn.config.input_size else fn.small_config()
    rgb = x.transpose(1, 2, 0).astype(np.float64) * np.asarray(cfg.std) + np.asarray(cfg.mean)
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8), cfg


@dataclass
class View:
    """The image as the explained encoder sees it."""

    image: np.ndarray          # (S, S, 3) uint8: what the encoder reads (see model_view)
    box: tuple                 # the part of the original image it covers
    size: tuple[int, int]      # original (width, height)
    original: Image.Image      # decoded at full resolution, for drawing
    data: bytes = field(repr=False, default=b"")  # the encoded image: what predictions read
    name: str | None = None
    readings: dict = field(repr=False, default_factory=dict)  # id(model) -> the model's Featurized
    sample: object = field(repr=False, default=None)  # a frame's (or windowed image's) Sample: what predictions read
    frame: np.ndarray | None = field(repr=False, default=None)  # a frame's decoded pixels (H x W x 3 uint8)


class Subject:
    """Base: class names, the explained encoder, views, torch scores and numpy probabilities."""

    classes: list
    encoder_names: list[str]
    encoder_name: str  # the one whose pixels are explained

    def encoder(self, name: str | None = None):
        """The model that runs for ``name`` (default: the explained encoder): a tile bag's inner
        encoder, which reads each tile (:mod:`.tile_inputs`)."""
        from ..encoders import load_model
        from ..encoders.tilebag import reader

        return load_model(reader(name or self.encoder_name))

    @property
    def cfg(self):
        return self.encoder().config

    @property
    def reader_name(self) -> str:
        """The model whose view of the image is explained (a tile bag's: its inner encoder's view of
        the whole image; the tiles are cut by :mod:`.tile_inputs`)."""
        from ..encoders.tilebag import reader

        return reader(self.encoder_name)

    small_input = "auto"  # the input size for tiny images (a trained model's own; extraction's default)
    model = None  # a trained model, whose featurize path gives the probabilities
    perturbed = None  # the View whose perturbed copies inputs() reads (tile_inputs.perturbing: a tile bag's tiles)

    def read(self, image) -> View:
        """The image (path, bytes, file, PIL or array) as the explained encoder sees it; an
        unreadable one raises :class:`~wordsight.io.images.ImageError` naming it."""
        from ..io.images import decode_image
        from ..io.media_ref import media_of

        ref = media_of(getattr(image, "path", image))
        if ref is not None:  # a frame of a video, DICOM or TIFF, or a windowed image (listed by open_source)
            return self._read_media(image, ref)
        data, name = image_bytes(image)
        try:
            pixels, cfg = model_view(data, self.reader_name, self.small_input)
            original = decode_image(data)
        except ImageError as e:
            raise ImageError(f"{name}: {e}" if name else str(e)) from None
        return View(pixels, view_box(original.size, cfg), original.size, original, data, name)

    def _read_media(self, image, ref) -> View:
        """A listed frame (a ``Sample`` or ``MediaRef``) decoded as extraction decodes it: the frame's
        own pixels (:func:`frame_view`), or a high-depth image through its window."""
        from ..io.images import decode_image
        from ..io.media_read import sample_image
        from ..io.sources import Sample

        sample = image if isinstance(image, Sample) else Sample(ref)
        try:
            if ref.kind == "image":
                data, _ = image_bytes(sample.data if sample.data is not None else ref.file)
                sample = Sample(ref, sample.label, sample.text, data=data)
                pixels, cfg = model_view(data, self.reader_name, self.small_input, ref.window)
                original = decode_image(data, window=ref.window)
                return View(pixels, view_box(original.size, cfg), original.size, original, data, ref, sample=sample)
            original = sample_image(sample)
            frame = np.asarray(original)
            pixels, cfg = frame_view(sample, frame, self.reader_name, self.small_input)
        except ImageError as e:
            raise ImageError(f"{ref}: {e}") from None
        return View(pixels, view_box(original.size, cfg), original.size, original, b"", ref, sample=sample, frame=frame)

    def model_pixels(self, view: View, encoder: str) -> np.ndarray:
        """``encoder``'s own model input of the viewed image (uint8), read as extraction reads it."""
        if view.frame is not None:
            return frame_view(view.sample, view.frame, encoder, self.small_input)[0]
        window = view.sample.path.window if view.sample is not None else None
        return model_view(view.data, encoder, self.small_input, window)[0]

    def reading(self, view: View):
        """The trained model's Featurized of the image: its own featurize path, the one
        ``predict_proba`` takes (feature cache, prior reading), kept on the view (per model: an
        ensemble's members read the same view)."""
        from ..io.sources import Sample

        model = self.model
        if id(model) not in view.readings:
            F = model.featurize([view.sample or Sample(view.name or "image", data=view.data)])
            if F.failures:
                raise ImageError(f"{F.failures[0].path}: {F.failures[0].reason}")
            view.readings[id(model)] = F
        return view.readings[id(model)]

    def proba(self, view: View) -> np.ndarray:
        """The model's probabilities of the image (n_classes,): a trained model's ``predict_proba``
        row (test-time augmentation included); a bare encoder's ImageNet softmax of the view."""
        if self.model is None:
            return self.proba_views(view.image[None])[0]
        F = self.reading(view)
        return np.asarray(self.model.proba_featurized(F)[0], np.float64)

    def view_inputs(self, view: View) -> dict[str, torch.Tensor]:
        """Per-encoder input tensors of the image itself (batch of one) for the torch path: the
        explained encoder reads the view; any other encoder its own model input of the image."""
        out = {}
        from .tile_inputs import tile_reading

        for name in self.encoder_names:
            if is_bag(name):  # each tile as extraction cuts and reads it: (tiles, 3, s, s)
                out[name] = torch.from_numpy(tile_reading(self, view, name).inputs)
                continue
            pixels = view.image if name == self.encoder_name else self.model_pixels(view, name)
            out[name] = torch.from_numpy(to_tensor_array(pixels, self.encoder(name).config)[None])
        return out

    def fill_colour(self) -> np.ndarray:
        """The colour that stands for 'nothing here': the encoder's normalisation mean (input 0)."""
        return np.round(np.asarray(self.cfg.mean) * 255).astype(np.uint8)

    def inputs(self, views: np.ndarray) -> dict[str, torch.Tensor]:
        """Per-encoder input tensors for a batch of uint8 views (B, S, S, 3). The explained
        encoder reads the view as is; any other encoder preprocesses it its own way."""
        from .tile_inputs import tiles_of_views

        out = {}
        for name in self.encoder_names:
            enc = self.encoder(name)
            if is_bag(name):  # the tiles of each view, each read as an image: (B * tiles, 3, s, s)
                arr = tiles_of_views(self, views, name, enc)
            elif name == self.encoder_name:
                arr = np.stack([to_tensor_array(Image.fromarray(v), enc.config) for v in views])
            else:
                arr = np.stack([enc.preprocess(Image.fromarray(v)) for v in views])
            out[name] = torch.from_numpy(arr)
        return out

    def class_index(self, target) -> int:
        """Index of ``target`` (a class, its string form, or an int index for ImageNet heads)."""
        for i, c in enumerate(self.classes):
            if c == target:
                return i
        for i, c in enumerate(self.classes):
            if str(c) == str(target):
                return i
        if isinstance(target, (int, np.integer)) and self.is_imagenet and 0 <= target < len(self.classes):
            return int(target)
        shown = ", ".join(map(str, self.classes[:10])) + (" ..." if len(self.classes) > 10 else "")
        raise ValueError(f"unknown class {target!r}: this model's classes are {shown}")

    is_imagenet = False

    # subclasses
    def scores(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def proba_views(self, views: np.ndarray, batch_size: int = 32) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def encode_views(self, views: np.ndarray, batch_size: int = 32) -> tuple[dict, np.ndarray | None]:
        """Per-encoder embeddings and the ImageNet softmax of a batch of views (no gradients)."""
        emb: dict[str, list] = {n: [] for n in self.encoder_names}
        probs = []
        probs_enc = self.probs_encoder
        step = min(batch_size, DEADLINE_STEP) if deadline_active() else batch_size
        for i in range(0, len(views), step):
            check_deadline("the explanation")  # a server request's deadline (no deadline elsewhere)
            inp = Subject.inputs(self, views[i:i + step])
            with torch.inference_mode():
                for name in self.encoder_names:
                    out = self.encoder(name)(inp[name])
                    n = len(views[i:i + step])  # a tile bag's tiles side by side in its image's row
                    emb[name].append(out["embedding"].float().numpy().reshape(n, -1))
                    if name == probs_enc and "logits" in out:
                        probs.append(torch.softmax(out["logits"].float(), 1).numpy())
        return {n: np.concatenate(v) for n, v in emb.items()}, (np.concatenate(probs) if probs else None)

    probs_encoder: str | None = None
    # set by Grad-CAM: {encoder name: {}} receives each named encoder's feature map ("fmap") and its
    # gradient ("grad"); a tile bag's holds one map per tile
    capture: dict | None = None

    def run_encoder(self, name: str, x: torch.Tensor) -> dict:
        """``encoder(x)``, spelled out for CNNs (forward_features -> forward_head -> ImageNet head,
        as ``CNNEncoder.forward`` does) so that Grad-CAM can hold the feature map that is pooled
        into the embedding."""
        enc = self.encoder(name)
        if self.capture is None or name not in self.capture or not hasattr(enc, "forward_features"):
            return enc(x)
        # Grad-CAM needs the gradient at the feature map only: running the backbone without a
        # graph spares the backward pass through it (measured: 0.84 s of 0.9 s per image, 2 cores)
        with torch.no_grad():
            fmap = enc.forward_features(x)
        fmap.requires_grad_(torch.is_grad_enabled())
        held = self.capture[name]
        held["fmap"] = fmap
        if fmap.requires_grad:
            fmap.register_hook(lambda g: held.__setitem__("grad", g))
        pooled = enc.forward_head(fmap, pre_logits=True)
        out = {"embedding": pooled}
        if enc.config.has_imagenet_head:
            out["logits"] = enc.net.classifier_head(pooled)
        return out


class EncoderSubject(Subject):
    """A bare encoder's ImageNet head (``wordsight explain efficientnet-lite0 cat.jpg``)."""

    is_imagenet = True

    def __init__(self, name: str):
        from ..encoders import load_model
        from ..encoders.imagenet import imagenet_class_names

        enc = load_model(name)
        if not enc.config.has_imagenet_head:
            raise ValueError(f"{name!r} has no ImageNet head to explain; explain a trained wordsight model "
                             "(a folder saved by Classifier.save) instead")
        self.encoder_name = name
        self.encoder_names = [name]
        self.probs_encoder = name
        self.classes = list(imagenet_class_names())

    def scores(self, inputs):
        return self.run_encoder(self.encoder_name, inputs[self.encoder_name])["logits"]

    def proba_views(self, views, batch_size=32):
        _, probs = self.encode_views(views, batch_size)
        return probs.astype(np.float64)


class ClassifierSubject(Subject):
    """A trained :class:`wordsight.Classifier`, explained through one of its encoders."""

    def __init__(self, model, encoder: str | None = None):
        model._check_fitted()
        if not model.feature_dims_:
            raise ValueError("this Classifier was fitted on a precomputed feature matrix: there is no image "
                             "path to explain (fit it on images or FeatureBlocks)")
        self.model = model
        self.classes = list(model.classes_)
        self.encoder_names = list(model.encoder_names)
        self.probs_encoder = model.probs_encoder_
        if encoder is None:  # prefer an encoder whose pixels Grad-CAM can reach (a whole image's to a bag's)
            cnn = [n for n in self.encoder_names if hasattr(self.encoder(n), "forward_features")]
            cnn = sorted(cnn, key=is_bag)
            encoder = (cnn or self.encoder_names)[0]
        if encoder not in self.encoder_names:
            raise ValueError(f"encoder {encoder!r} is not one of this model's encoders {self.encoder_names}")
        self.encoder_name = encoder
        self.small_input = model.small_input
        self._bank_emb = None

    # ---------------------------------------------------------------- the model in torch
    def bank(self):
        return self.model.concept_bank()

    def fused(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The fused features (B, F) float64, differentiable: the model's fusion in torch."""
        from ..text.semantic import semantic_vectors_torch

        fusion = self.model.fusion_
        emb, probs = {}, None
        for name in self.encoder_names:
            out = self.run_encoder(name, inputs[name])
            n = len(inputs[name]) // instances(name)  # a tile bag's tiles side by side in its image's row
            emb[name] = out["embedding"].float().reshape(n, -1)
            if name == self.probs_encoder and "logits" in out:
                probs = torch.softmax(out["logits"].float(), 1)
        semantic = None
        if fusion.text:
            if self._bank_emb is None:
                self._bank_emb = torch.from_numpy(np.asarray(self.bank().embeddings, np.float32))
            semantic = semantic_vectors_torch(probs, self._bank_emb)
        paired = inputs.get(PAIRED_KEY)
        if fusion.paired and paired is None:
            paired = torch.full((len(next(iter(emb.values()))), self.model.state_.paired.dim), float("nan"))
        return fusion.fuse_torch(emb, semantic, paired)

    def scores(self, inputs):
        """Log-probabilities (B, n_classes): the head's torch form, the prior mixed in."""
        head = self.model.head_
        if not head.differentiable:
            raise ValueError(f"the {head.name!r} head is not differentiable, so gradient maps (Grad-CAM) "
                             "cannot reach the image; use method='lime', which works for every head")
        return self.model.state_.logits_torch(self.fused(inputs), inputs.get(PRIOR_KEY))

    def view_inputs(self, view: View) -> dict[str, torch.Tensor]:
        out = super().view_inputs(view)
        if self.model.prior_ is not None:  # the prior's own reading of the image, as predict_proba's
            out[PRIOR_KEY] = torch.from_numpy(np.asarray(self.reading(view).prior_logits))
        return out

    def inputs(self, views: np.ndarray) -> dict[str, torch.Tensor]:
        out = super().inputs(views)
        if self.model.prior_ is not None:  # the prior reads its own view of the image: a constant here
            probs, emb = self.prior_features(views)
            out[PRIOR_KEY] = torch.from_numpy(self.model.prior_.log_proba_reading({"probs": probs, "embedding": emb}))
        return out

    def prior_features(self, views: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """The language prior's reading of uint8 views (B, S, S, 3): ImageNet probabilities and
        embeddings of its encoder on its image view (e.g. inverted) at full input size."""
        from ..features.views import get_view

        prior = self.model.prior_
        view, _ = get_view(prior.view_)
        enc = self.encoder(prior.encoder)
        # the explained encoder's view covers what its full-size input covers (a tiny image's view
        # is smaller: stretched to full size); another encoder resizes and crops it its own way
        full = dataclasses.replace(enc.config, resize_mode="exact")
        probs, emb = [], []
        for i in range(0, len(views), batch_size):
            check_deadline("the explanation")
            pil = [Image.fromarray(v) for v in views[i:i + batch_size]]
            pil = [view(p) for p in pil] if view else pil
            x = np.stack([preprocess(p, full) if prior.encoder == self.encoder_name else enc.preprocess(p)
                          for p in pil])
            with torch.inference_mode():
                out = enc(torch.from_numpy(x))
            probs.append(torch.softmax(out["logits"].float(), 1).numpy())
            emb.append(out["embedding"].float().numpy())
        return np.concatenate(probs), np.concatenate(emb)

    def blocks(self, views: np.ndarray, batch_size: int = 32):
        from ..estimator.feature_blocks import FeatureBlocks

        emb, probs = self.encode_views(views, batch_size)
        fb = FeatureBlocks([None] * len(views), emb, probs, self.probs_encoder if probs is not None else None)
        prior = self.model.prior_
        if prior is not None:
            fb.prior_features[(prior.encoder, prior.view_)] = self.prior_features(views, batch_size)
        return fb

    def proba_views(self, views, batch_size=32):
        # The model's own prediction code on FeatureBlocks: every head and fusion mode, exactly
        # as predict_proba computes it from an image (test-time augmentation aside).
        return np.asarray(self.model.predict_proba(self.blocks(views, batch_size)), np.float64)


# (accepts(model), make(model, encoder)) for models this module does not know; registered by the
# module that knows them (explain.ensemble_subject), so that no import runs back from here.
SUBJECT_TYPES: list = []


def as_subject(model, encoder: str | None = None) -> Subject:
    """A :class:`Subject` from a Classifier, a saved-model folder, or an encoder name (whose
    ImageNet head is then explained)."""
    if isinstance(model, Subject):
        return model
    if isinstance(model, (str, Path)):
        p = Path(model)
        if p.is_dir():
            from ..estimator import load_model_folder

            return as_subject(load_model_folder(p), encoder)
        from ..encoders import get_config

        try:
            get_config(str(model))
        except (KeyError, ValueError) as e:
            raise ValueError(f"{model!r} is neither a saved wordsight model folder nor an encoder name ({e})") from None
        return EncoderSubject(str(model))
    for accepts, make in SUBJECT_TYPES:  # e.g. ensembles (explain.ensemble_subject)
        if accepts(model):
            return make(model, encoder)
    if hasattr(model, "head_") or hasattr(model, "classes_"):
        return ClassifierSubject(model, encoder)
    raise TypeError(f"cannot explain a {type(model).__name__}: give a wordsight Classifier, a saved-model "
                    "folder or an encoder name")
