"""Fusion, heads, the Classifier and its saved form (JSON + safetensors)."""
from .augment import Augment
from .classifier import Classifier, Featurized
from .fusion import FUSIONS, FeatureBlocks
from .heads import HEADS, make_head
from .persistence import ModelFolderError, read_config

__all__ = ["Augment", "Classifier", "FUSIONS", "FeatureBlocks", "Featurized", "HEADS", "ModelFolderError",
           "make_head", "read_config"]
