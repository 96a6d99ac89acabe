"""wordsight: image classification with language models."""
from ._version import __version__
from .encoders import get_config, list_models, load_model
from .features import FeatureCache, FeatureSet, extract_features, iter_features
from .io.sources import Sample, Source, open_source
from .language import ZeroShotClassifier
from .models import Classifier

embed = extract_features

__all__ = ["Classifier", "ZeroShotClassifier", "FeatureCache", "FeatureSet", "Sample", "Source", "__version__", "embed",
           "extract_features", "get_config", "iter_features", "list_models", "load_model", "open_source"]
