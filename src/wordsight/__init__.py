"""wordsight: image classification with language models.

Public API: :class:`Classifier`, :class:`AnomalyDetector`, :class:`ZeroShotClassifier`, :class:`ZeroShotPipeline`,
:func:`load` (a saved model folder, whatever its kind), :func:`extract_features`, :func:`extract_views`,
:func:`load_model`, :func:`list_models`. Names load lazily, so that
``import wordsight`` (and the CLI's start) pays for torch and scikit-learn only when they are used.
"""
from ._util.lazy import lazy_exports
from ._version import __version__

_EXPORTS = {
    "Classifier": ".estimator", "AnomalyDetector": ".estimator.anomaly", "FittedModel": ".estimator",
    "ZeroShotClassifier": ".zeroshot.text_classifier", "ZeroShotPipeline": ".zeroshot.pipeline",
    "FeatureCache": ".features", "FeatureSet": ".features", "extract_features": ".features",
    "extract_views": ".features", "iter_features": ".features",
    "get_config": ".encoders", "list_models": ".encoders", "load_model": ".encoders",
    "Sample": ".io.sources", "Source": ".io.sources", "open_source": ".io.sources",
    "cache_report": "._util.caches", "clear_caches": "._util.caches",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


def load(folder):
    """The fitted model saved in ``folder`` (a Classifier, an ensemble, an anomaly detector: the kind its
    config.json declares), every file verified (:func:`wordsight.estimator.load_model_folder`)."""
    from .estimator import load_model_folder

    return load_model_folder(folder)


def embed(*args, **kwargs):
    """Alias of :func:`extract_features`."""
    from .features import extract_features

    return extract_features(*args, **kwargs)


__all__ = ["__version__", "embed", "load", *_EXPORTS]
