"""The language layer: images put into words, classes described in words, and zero-shot
classification where the two meet in a text space.

- :class:`ConceptBank`: the 1000 ImageNet concepts (or yours) with descriptions, embedded once.
- :func:`describe`, :func:`semantic_vectors` (ConSE), :class:`TextSpaceMap` (DeViSE-style):
  an image's concept probabilities as text and as a text-space vector.
- :func:`get_llm`: ``local`` (packaged SmolLM2), ``openai`` (any chat-completions endpoint), ``none``.
- :func:`generate_class_descriptions` / :func:`save_class_descriptions` /
  :func:`load_class_descriptions`: CuPL-style class descriptions, JSON keyed by class name.
- :func:`describe_classes`: descriptions that discriminate on the user's images (FuDD
  differential descriptions for the confused pairs, selection by class separation), weighted.
- :class:`ZeroShotClassifier`: names, templates, descriptions, descriptors, waffle, over text vectors.
- :class:`ZeroShotPipeline`: images -> view -> text space -> class scores, the one zero-shot path.
- :func:`shorten` (text cut at a clause boundary), :func:`concept_threshold` (the measured
  probability a concept needs to be listed), :func:`class_lead` (a trained model's classes first).

Names load lazily (see :mod:`wordsight._util.lazy`).
"""
from .._util.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["ConceptBank", "imagenet_concepts", "short_description"], ".concepts"),
    **dict.fromkeys(["DESCRIPTION_PROMPTS", "MissingClassesError", "cached_class_descriptions", "clean_description",
                     "generate_class_descriptions", "load_class_descriptions", "save_class_descriptions"],
                    ".descriptions"),
    **dict.fromkeys(["describe_features", "encoder_kind", "image_text_vectors", "text_side", "text_space_map"],
                    ".images"),
    **dict.fromkeys(["LLMBackend", "LLMError", "LocalLLM", "NoLLM", "OpenAIChat", "get_llm"], ".llm"),
    **dict.fromkeys(["DEFAULT_TOP_T", "TextSpaceMap", "describe", "head_weights", "semantic_vectors", "top_concepts"],
                    ".semantic"),
    **dict.fromkeys(["VIEWS", "VIEW_CHOICES", "choose_view", "get_view", "light_background"], ".views"),
    **dict.fromkeys(["DEFAULT_TEMPLATES", "METHODS", "ZeroShotClassifier", "waffle_descriptors"], ".zeroshot"),
    **dict.fromkeys(["ZeroShotPipeline", "read_images"], ".pipeline"),
    **dict.fromkeys(["confused_pairs", "differential_descriptions"], ".differential"),
    **dict.fromkeys(["selection_weights", "separation_scores"], ".selection"),
    **dict.fromkeys(["describe_classes"], ".refine"),
    **dict.fromkeys(["CONCEPT_THRESHOLDS", "class_lead", "concept_threshold", "shorten"], ".wording"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
