"""The text layer: images put into words and classes described in words, in a text space.

- :class:`ConceptBank`: the 1000 ImageNet concepts (or yours) with descriptions, embedded once.
- :func:`describe`, :func:`semantic_vectors` (ConSE), :class:`TextSpaceMap` (DeViSE-style):
  an image's concept probabilities as text and as a text-space vector.
- :func:`get_llm`: ``local`` (packaged SmolLM2), ``openai`` (any chat-completions endpoint), ``none``.
- :func:`generate_class_descriptions` / :func:`save_class_descriptions` /
  :func:`load_class_descriptions`: CuPL-style class descriptions, JSON keyed by class name.
- :func:`differential_descriptions` (FuDD pairs), :func:`selection_weights` (texts weighted by how
  well they separate their class).
- :func:`shorten` (text cut at a clause boundary), :func:`concept_threshold` (the measured
  probability a concept needs to be listed), :func:`class_lead` (a trained model's classes first).

Zero-shot classification, where images and these texts meet, is :mod:`wordsight.zeroshot`.
Names load lazily (see :mod:`wordsight._util.lazy`).
"""
from .._util.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["ConceptBank", "imagenet_concepts", "short_description"], ".concepts"),
    **dict.fromkeys(["DESCRIPTION_PROMPTS", "MissingClassesError", "cached_class_descriptions", "clean_description",
                     "generate_class_descriptions", "load_class_descriptions", "save_class_descriptions"],
                    ".descriptions"),
    **dict.fromkeys(["LLMBackend", "LLMError", "LocalLLM", "NoLLM", "OpenAIChat", "get_llm"], ".llm"),
    **dict.fromkeys(["DEFAULT_TOP_T", "TextSpaceMap", "describe", "head_weights", "semantic_vectors", "top_concepts"],
                    ".semantic"),
    **dict.fromkeys(["confused_pairs", "differential_descriptions"], ".differential"),
    **dict.fromkeys(["selection_weights", "separation_scores"], ".description_weights"),
    **dict.fromkeys(["CONCEPT_THRESHOLDS", "class_lead", "concept_threshold", "shorten"], ".phrasing"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
