"""The language layer: images put into words, classes described in words, and zero-shot
classification where the two meet in a text space.

- :class:`ConceptBank`: the 1000 ImageNet concepts (or yours) with descriptions, embedded once.
- :func:`describe`, :func:`semantic_vectors` (ConSE), :class:`TextSpaceMap` (DeViSE-style):
  an image's concept probabilities as text and as a text-space vector.
- :func:`get_llm`: ``local`` (packaged SmolLM2), ``openai`` (any chat-completions endpoint), ``none``.
- :func:`generate_class_descriptions` / :func:`save_class_descriptions` /
  :func:`load_class_descriptions`: CuPL-style class descriptions, JSON keyed by class name.
- :class:`ZeroShotClassifier`: names, templates, descriptions, descriptors, waffle.
"""
from .concepts import ConceptBank, imagenet_concepts, short_description
from .descriptions import (DESCRIPTION_PROMPTS, MissingClassesError, cached_class_descriptions,
                           clean_description,
                           generate_class_descriptions, load_class_descriptions, save_class_descriptions)
from .images import describe_features, encoder_kind, image_text_vectors, text_side
from .llm import LLMBackend, LLMError, LocalLLM, NoLLM, OpenAIChat, get_llm
from .semantic import DEFAULT_TOP_T, TextSpaceMap, describe, head_weights, semantic_vectors, top_concepts
from .views import VIEWS, get_view, light_background
from .zeroshot import DEFAULT_TEMPLATES, METHODS, ZeroShotClassifier, waffle_descriptors

__all__ = [
    "DEFAULT_TEMPLATES", "DEFAULT_TOP_T", "DESCRIPTION_PROMPTS", "METHODS", "VIEWS", "ConceptBank", "LLMBackend",
    "LLMError", "LocalLLM", "MissingClassesError", "NoLLM", "OpenAIChat", "TextSpaceMap", "ZeroShotClassifier",
    "cached_class_descriptions", "clean_description", "describe", "describe_features", "encoder_kind", "generate_class_descriptions",
    "get_llm", "get_view", "head_weights", "image_text_vectors", "imagenet_concepts", "light_background",
    "load_class_descriptions", "save_class_descriptions", "semantic_vectors", "short_description", "text_side",
    "top_concepts", "waffle_descriptors",
]
