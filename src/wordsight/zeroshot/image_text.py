"""From image features to the text space and to words, whatever kind of encoder made them.

- An ImageNet CNN (``efficientnet-lite0``...): concept probabilities -> ConSE semantic vectors
  (or the DeViSE-style linear map) in the text encoder's space; described by its top concepts.
- A joint model (``clip:...``): its image embedding is already in its own text space; described
  by the concepts its text tower finds nearest.
- A caption model (``caption:...``): the caption is the description, embedded by the text encoder.
"""
from __future__ import annotations

import numpy as np

from .._util.caches import ProcessCache
from .._util.numerics import l2_normalize, softmax
from ..text.concepts import ConceptBank
from ..text.semantic import DEFAULT_TOP_T, TextSpaceMap, describe, semantic_vectors

WAYS = ("conse", "linear")
# Chosen on 1000 Fashion-MNIST training images (benchmarks/zeroshot_fashion_mnist.py): with
# centring, the linear map beat ConSE by 2-4 points for every method.
DEFAULT_WAY = "linear"
# Ridge strength of the linear map into the text space: 10 was best for class names on
# Fashion-MNIST training images (benchmarks/zeroshot_fashion_mnist.py, docs/benchmarks.md zero-shot table).
TEXT_MAP_ALPHA = 10.0
_maps = ProcessCache("text-space-maps", maxsize=8)


def text_space_map(encoder: str, text_model: str = "minilm", alpha: float = TEXT_MAP_ALPHA,
                   bank: ConceptBank | None = None) -> TextSpaceMap:
    """The DeViSE-style map of ``encoder``'s embeddings into ``text_model``'s space, computed once
    per process (from the ImageNet head's weights and the concept bank's embeddings)."""
    from ..text.concepts import default_bank

    bank = bank or default_bank(text_model)
    key = (encoder, bank.text_model if isinstance(bank.text_model, str) else id(bank), bank.texts, len(bank), alpha)
    return _maps.get_or_create(key, lambda: TextSpaceMap.from_encoder(encoder, bank, alpha=alpha))


def encoder_kind(model: str) -> str:
    """``joint``, ``caption`` or ``imagenet`` (a CNN with an ImageNet head); else ``image``."""
    from ..encoders import get_config

    cfg = get_config(model)
    if cfg.modality in ("joint", "caption"):
        return cfg.modality
    return "imagenet" if cfg.has_imagenet_head else "image"


def text_side(model: str, text_model: str = "minilm") -> str:
    """The text model whose space ``model``'s image vectors land in."""
    kind = encoder_kind(model)
    if kind == "joint":
        return model
    if kind == "caption":
        from ..encoders import load_model

        return load_model(model).text_model
    return text_model


def _arrays(features) -> dict:
    return features.arrays if hasattr(features, "arrays") else dict(features)


def image_text_vectors(features, model: str, text_model: str = "minilm", way: str = DEFAULT_WAY,
                       top_t: int = DEFAULT_TOP_T, bank: ConceptBank | None = None,
                       text_map: TextSpaceMap | None = None) -> np.ndarray:
    """(N, D) L2-normalised vectors of images in the text space of :func:`text_side`.

    ``features``: a :class:`~wordsight.features.FeatureSet` (or its ``arrays``) made by ``model``.
    ``way`` (ImageNet CNNs only): ``conse`` (top-``top_t`` concept mixture) or ``linear``
    (DeViSE-style map fitted on the head weights; ``text_map`` to reuse one).
    """
    arrays = _arrays(features)
    kind = encoder_kind(model)
    if kind in ("joint", "caption"):
        return l2_normalize(arrays["embedding"])
    if kind != "imagenet":
        raise ValueError(f"{model}: an image-only encoder without an ImageNet head has no way into the "
                         "text space; use a CNN with an ImageNet head, a clip: model or a caption: model")
    if way not in WAYS:
        raise ValueError(f"way must be one of {', '.join(WAYS)}, not {way!r}")
    bank = bank or ConceptBank.imagenet(text_model)
    if way == "conse":
        return semantic_vectors(softmax(arrays["logits"]), bank, top_t=top_t)
    if text_map is None:
        text_map = text_space_map(model, text_model, bank=bank)
    return text_map.transform(arrays["embedding"])


def describe_features(features, model: str, top: int = 3, concepts: ConceptBank | None = None,
                      text_model: str = "minilm") -> list[str]:
    """One readable description per image (see :func:`wordsight.text.describe`).

    An ImageNet CNN is described by its own head's top concepts that clear its measured threshold
    (:func:`~wordsight.text.phrasing.concept_threshold`; "no ImageNet concept fits well" when
    none does); a caption model by its caption; a
    joint model by the ImageNet concepts nearest in its space. With ``concepts`` (your own bank,
    embedded by the encoder's text side) images are described by the concepts nearest to their
    text-space vectors instead.
    """
    from ..encoders import load_model

    arrays = _arrays(features)
    kind = encoder_kind(model)
    if concepts is None and kind == "caption":
        return load_model(model).decode_captions(arrays["caption_ids"])
    if concepts is None and kind == "imagenet":
        from ..text.phrasing import concept_threshold

        return describe(softmax(arrays["logits"]), ConceptBank.imagenet(text_model), top,
                        min_probability=concept_threshold(model))
    if concepts is None and kind == "joint":
        concepts = ConceptBank.imagenet(model)
    if concepts is None:
        raise ValueError(f"{model}: this encoder has no concept head to describe images with")
    X = image_text_vectors(arrays, model, text_model=text_side(model, text_model))
    if X.shape[1] != concepts.dim:
        raise ValueError(
            f"the concepts were embedded by {concepts.text_model!r} ({concepts.dim}-d) but {model}'s "
            f"images live in a {X.shape[1]}-d space; embed the concepts with {text_side(model, text_model)!r}"
        )
    scale = float(getattr(load_model(model), "logit_scale", 0) or 0) if kind == "joint" else 0.0
    from .text_classifier import DEFAULT_TEXT_SCALE

    return describe(softmax(X @ concepts.embeddings.T * (scale or DEFAULT_TEXT_SCALE)), concepts, top)
