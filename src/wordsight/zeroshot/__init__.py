"""Zero-shot classification: images and class texts meet in a text space.

- :class:`ZeroShotClassifier`: names, templates, descriptions, descriptors, waffle, over text vectors.
- :class:`ZeroShotPipeline`: images -> view -> text space -> class scores, the one zero-shot path
  (the CLI, the server, the Classifier's language prior and the report use it).
- :func:`describe_features`, :func:`text_space_map`: from any encoder's image features to the text
  space and to words (ImageNet CNNs by ConSE or a linear map, joint models directly, captions).
- :func:`describe_classes`: descriptions that discriminate on the user's images (FuDD
  differential descriptions for the confused pairs, selection by class separation), weighted.

Names load lazily (see :mod:`wordsight._util.lazy`).
"""
from .._util.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["describe_features", "encoder_kind", "image_text_vectors", "text_side", "text_space_map"],
                    ".image_text"),
    **dict.fromkeys(["DEFAULT_TEMPLATES", "METHODS", "ZeroShotClassifier", "waffle_descriptors"], ".text_classifier"),
    **dict.fromkeys(["ZeroShotPipeline", "read_images"], ".pipeline"),
    **dict.fromkeys(["describe_classes"], ".refine"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
