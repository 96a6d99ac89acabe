"""Blocks, fusions, heads, the language prior, the Classifier and its saved form (JSON + safetensors)."""
from .augment import Augment
from .blocks import FeatureBlocks, Featurized
from .classifier import Classifier
from .fitted import FittedModel, load_model_folder
from .fusion import FUSIONS, make_fusion
from .heads import HEADS, make_head
from .persistence import ModelFolderError, read_config

__all__ = ["Augment", "Classifier", "FUSIONS", "FeatureBlocks", "Featurized", "FittedModel", "HEADS",
           "ModelFolderError", "load_model_folder", "make_fusion", "make_head", "read_config"]
