"""The estimator: a task x a fusion x a head over feature blocks, composed by the Classifier.

``tasks/`` (what a label is, what the output becomes, how it is scored), ``fusion/`` (which blocks
form a row and how the language prior or the image's own text enter), ``heads/`` (the learners),
``feature_blocks`` and ``featurizer`` (features of images, once), ``classifier`` (the scikit-learn
estimator), ``ensemble`` (vote and stack over fitted models), ``fitted`` (the FittedModel
protocol every saved model implements, and ``load_model_folder``), ``saved/`` (the Classifier's
folder: what config.json holds, its checks, folders of earlier versions).
"""
from .augment import Augment
from .classifier import Classifier
from .feature_blocks import FeatureBlocks, Featurized
from .fitted import FittedModel, load_model_folder
from .fusion import FUSIONS, make_fusion
from .heads import HEADS, make_head
from .saved.persistence import ModelFolderError, read_config

__all__ = ["Augment", "Classifier", "FUSIONS", "FeatureBlocks", "Featurized", "FittedModel", "HEADS",
           "ModelFolderError", "load_model_folder", "make_fusion", "make_head", "read_config"]
