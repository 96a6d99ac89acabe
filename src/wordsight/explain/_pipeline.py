"""The path from an image to class scores, rebuilt in torch so that gradients reach the pixels.

What gets explained is a :class:`Subject`: a trained :class:`wordsight.Classifier` (encoders ->
fusion -> head [-> language prior]) or a bare encoder's ImageNet head. Both offer:

- ``view(pil)``: the image as the explained encoder sees it (resized and centre-cropped, uint8)
  and the box of the original image that this view covers (for drawing maps at original size);
- ``scores(inputs)``: torch, differentiable: per-encoder input tensors -> (B, n_classes) scores
  whose softmax is the model's probabilities (Grad-CAM, Grad-CAM++);
- ``proba_views(views)``: numpy, the model's own prediction code on a batch of perturbed views
  (LIME, the deletion check): every head, including the non-differentiable ones, works there.

The torch path mirrors ``wordsight.models.fusion`` (L2-normalised image blocks, ``text_weight *``
the ConSE semantic vector) and the heads' learned arrays (linear heads with the standardisation
folded in via ``Classifier.linear_head()``, MLP layers, cosine kNN). ConSE's top-T selection is
piecewise constant, so within it the semantic vector is a smooth function of the ImageNet softmax
and gradients flow through the text block too. The language prior (``fusion="prior"``) reads
its own view of the image (e.g. inverted, at full input size): it is computed with the model's
own code and enters the scores as a constant (``inputs[PRIOR_KEY]``), so gradient maps show the
image head's share of the decision, and LIME and the deletion check, which re-run the whole
model on perturbed images, include the prior.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..encoders.preprocess import resize_and_crop, to_tensor_array

PRIOR_KEY = "language-prior"  # inputs() entry holding the prior's log-probabilities


def _l2n(x: torch.Tensor) -> torch.Tensor:
    """L2 normalisation whose norm is a constant for gradients (values are unchanged).

    Differentiating through the norm adds a term ``-(w . e_hat) e_hat`` to every class's gradient,
    proportional to the embedding itself: for a class the image does not look like (negative
    score), Grad-CAM would then light up whatever the encoder sees most, i.e. the evidence for the
    *predicted* class. With the norm held constant, the image block's score is exactly a sum over
    feature-map positions (CAM), and Grad-CAM for a class shows that class's evidence.
    """
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12).detach()


def view_box(size: tuple[int, int], cfg) -> tuple[float, float, float, float]:
    """The box (left, top, right, bottom) of an image of ``size`` that the model input covers,
    in original pixels (mirrors :func:`wordsight.encoders.preprocess.resize_and_crop`)."""
    w, h = size
    if cfg.resize_mode == "exact":
        return (0.0, 0.0, float(w), float(h))
    scale = cfg.resize_size / min(w, h)
    nw, nh = max(cfg.input_size, round(w * scale)), max(cfg.input_size, round(h * scale))
    left, top = (nw - cfg.input_size) // 2, (nh - cfg.input_size) // 2
    sx, sy = nw / w, nh / h
    return (left / sx, top / sy, (left + cfg.input_size) / sx, (top + cfg.input_size) / sy)


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


@dataclass
class View:
    """The image as the explained encoder sees it."""

    image: np.ndarray          # (S, S, 3) uint8: resized and centre-cropped
    box: tuple                 # the part of the original image it covers
    size: tuple[int, int]      # original (width, height)
    original: Image.Image


class Subject:
    """Base: class names, the explained encoder, views, torch scores and numpy probabilities."""

    classes: list
    encoder_names: list[str]
    encoder_name: str  # the one whose pixels are explained

    def encoder(self, name: str | None = None):
        from ..encoders import load_model

        return load_model(name or self.encoder_name)

    @property
    def cfg(self):
        return self.encoder().config

    def view(self, pil: Image.Image) -> View:
        pil = pil.convert("RGB")
        cfg = self.cfg
        return View(np.asarray(resize_and_crop(pil, cfg), dtype=np.uint8), view_box(pil.size, cfg), pil.size, pil)

    def fill_colour(self) -> np.ndarray:
        """The colour that stands for 'nothing here': the encoder's normalisation mean (input 0)."""
        return np.round(np.asarray(self.cfg.mean) * 255).astype(np.uint8)

    def inputs(self, views: np.ndarray) -> dict[str, torch.Tensor]:
        """Per-encoder input tensors for a batch of uint8 views (B, S, S, 3). The explained
        encoder reads the view as is; any other encoder preprocesses it its own way."""
        out = {}
        for name in self.encoder_names:
            enc = self.encoder(name)
            if name == self.encoder_name:
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
        for i in range(0, len(views), batch_size):
            inp = Subject.inputs(self, views[i:i + batch_size])
            with torch.inference_mode():
                for name in self.encoder_names:
                    out = self.encoder(name)(inp[name])
                    emb[name].append(out["embedding"].float().numpy())
                    if name == probs_enc and "logits" in out:
                        probs.append(torch.softmax(out["logits"].float(), 1).numpy())
        return {n: np.concatenate(v) for n, v in emb.items()}, (np.concatenate(probs) if probs else None)

    probs_encoder: str | None = None
    capture: dict | None = None  # set by Grad-CAM: receives the explained encoder's feature map

    def run_encoder(self, name: str, x: torch.Tensor) -> dict:
        """``encoder(x)``, spelled out for CNNs (forward_features -> forward_head -> ImageNet head,
        as ``CNNEncoder.forward`` does) so that Grad-CAM can hold the feature map that is pooled
        into the embedding."""
        enc = self.encoder(name)
        if self.capture is None or name != self.encoder_name or not hasattr(enc, "forward_features"):
            return enc(x)
        fmap = enc.forward_features(x)
        self.capture["fmap"] = fmap
        if fmap.requires_grad:
            fmap.register_hook(lambda g: self.capture.__setitem__("grad", g))
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
        if encoder is None:  # prefer an encoder whose pixels Grad-CAM can reach
            cnn = [n for n in self.encoder_names if hasattr(self.encoder(n), "forward_features")]
            encoder = (cnn or self.encoder_names)[0]
        if encoder not in self.encoder_names:
            raise ValueError(f"encoder {encoder!r} is not one of this model's encoders {self.encoder_names}")
        self.encoder_name = encoder
        self._head = None
        self._bank_emb = None

    # ---------------------------------------------------------------- language pieces
    def bank(self):
        return self.model.concept_bank()

    def _semantic_torch(self, probs: torch.Tensor) -> torch.Tensor:
        """ConSE (``wordsight.language.semantic.semantic_vectors``) in torch."""
        from ..language.semantic import DEFAULT_TOP_T

        if self._bank_emb is None:
            self._bank_emb = torch.from_numpy(np.asarray(self.bank().embeddings, np.float32))
        t = min(DEFAULT_TOP_T, probs.shape[1])
        top, idx = probs.topk(t, dim=1)
        w = top / top.sum(1, keepdim=True).clamp_min(1e-12)
        sem = torch.einsum("bt,btd->bd", w, self._bank_emb[idx])
        return _l2n(sem)

    # ---------------------------------------------------------------- head in torch
    def _torch_head(self):
        if self._head is None:
            from ..models.heads import LinearHead

            head = self.model.head_
            a = {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in head.arrays.items()}
            if isinstance(head, LinearHead):
                W, b = self.model.linear_head()
                W, b = torch.from_numpy(np.asarray(W, np.float64)), torch.from_numpy(np.asarray(b, np.float64))
                self._head = lambda X: X @ W.T + b
            elif head.name == "mlp":
                n = int(head.info["layers"])

                def mlp(X):
                    h = (X - a["mean"]) / a["scale"]
                    for i in range(n):
                        h = h @ a[f"w{i}"] + a[f"b{i}"]
                        if i < n - 1:
                            h = h.clamp_min(0)
                    return h

                self._head = mlp
            elif head.name == "knn":
                k, n_classes = int(head.info["k"]), int(head.info["n_classes"])

                def knn(X):  # mirrors KNNHead.predict_proba
                    sims = _l2n(X) @ a["train"].T
                    top, idx = sims.topk(k, dim=1)
                    P = torch.zeros(len(X), n_classes, dtype=X.dtype).scatter_add(1, a["labels"].long()[idx], torch.exp(top / 0.1))
                    P = P + 1e-6
                    return torch.log(P / P.sum(1, keepdim=True))

                self._head = knn
            else:
                raise ValueError(f"the {head.name!r} head is not differentiable, so gradient maps (Grad-CAM) "
                                 "cannot reach the image; use method='lime', which works for every head")
        return self._head

    def fused(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The fused features (B, F) float64, differentiable."""
        m = self.model
        emb, probs = {}, None
        for name in self.encoder_names:
            out = self.run_encoder(name, inputs[name])
            emb[name] = out["embedding"].float()
            if name == self.probs_encoder and "logits" in out:
                probs = torch.softmax(out["logits"].float(), 1)
        parts = []
        if m.fusion in ("image", "concat", "prior"):
            parts += [_l2n(emb[n]) for n in self.encoder_names]
        if m.fusion in ("text", "concat"):
            parts.append(float(m.text_weight) * _l2n(self._semantic_torch(probs)))
        return torch.cat(parts, 1).double()

    def scores(self, inputs):
        X = self.fused(inputs)
        z = self._torch_head()(X)
        m = self.model
        if m.fusion == "prior" and m.prior_weight_:
            prior = inputs[PRIOR_KEY].to(z.dtype)
            z = torch.log_softmax(m.prior_head_temperature_ * z, 1) + m.prior_weight_ * torch.log_softmax(
                m.prior_temperature_ * prior, 1)
        return z

    def inputs(self, views: np.ndarray) -> dict[str, torch.Tensor]:
        out = super().inputs(views)
        if self.model.fusion == "prior":  # the prior reads its own view of the image: a constant here
            out[PRIOR_KEY] = torch.from_numpy(self.model.prior_.log_proba(*self.prior_features(views)))
        return out

    def prior_features(self, views: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """The language prior's reading of uint8 views (B, S, S, 3): ImageNet probabilities and
        embeddings of its encoder on its image view (e.g. inverted) at full input size."""
        from ..language.views import get_view

        m = self.model
        view, _ = get_view(m.prior_view_)
        enc = self.encoder(m.probs_encoder_)
        probs, emb = [], []
        for i in range(0, len(views), batch_size):
            pil = [Image.fromarray(v) for v in views[i:i + batch_size]]
            pil = [view(p) for p in pil] if view else pil
            # the explained encoder reads the view as is (as inputs() does); another resizes it
            x = np.stack([to_tensor_array(p, enc.config) if m.probs_encoder_ == self.encoder_name else enc.preprocess(p)
                          for p in pil])
            with torch.inference_mode():
                out = enc(torch.from_numpy(x))
            probs.append(torch.softmax(out["logits"].float(), 1).numpy())
            emb.append(out["embedding"].float().numpy())
        return np.concatenate(probs), np.concatenate(emb)

    def blocks(self, views: np.ndarray, batch_size: int = 32):
        from ..models.fusion import FeatureBlocks

        emb, probs = self.encode_views(views, batch_size)
        fb = FeatureBlocks([None] * len(views), emb, probs, self.probs_encoder if probs is not None else None)
        if self.model.fusion == "prior":
            fb.prior_features[(self.model.probs_encoder_, self.model.prior_view_)] = self.prior_features(views, batch_size)
        return fb

    def proba_views(self, views, batch_size=32):
        # The model's own prediction code on FeatureBlocks: every head and fusion mode, exactly
        # as predict_proba computes it from an image (test-time augmentation aside).
        return np.asarray(self.model.predict_proba(self.blocks(views, batch_size)), np.float64)


def as_subject(model, encoder: str | None = None) -> Subject:
    """A :class:`Subject` from a Classifier, a saved-model folder, or an encoder name (whose
    ImageNet head is then explained)."""
    if isinstance(model, Subject):
        return model
    if isinstance(model, (str, Path)):
        p = Path(model)
        if p.is_dir():
            from ..models import Classifier

            return ClassifierSubject(Classifier.load(p), encoder)
        from ..encoders import get_config

        try:
            get_config(str(model))
        except (KeyError, ValueError) as e:
            raise ValueError(f"{model!r} is neither a saved wordsight model folder nor an encoder name ({e})") from None
        return EncoderSubject(str(model))
    if hasattr(model, "head_") or hasattr(model, "classes_"):
        return ClassifierSubject(model, encoder)
    raise TypeError(f"cannot explain a {type(model).__name__}: give a wordsight Classifier, a saved-model "
                    "folder or an encoder name")
