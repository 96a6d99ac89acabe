"""What every fitted model offers the front-ends (CLI verbs, the server, the report, explanations),
and :func:`load_model_folder`: a saved folder loaded as the kind its config declares.

A fitted model saves itself as one :mod:`wordsight.storage` folder whose ``config.json`` names
its ``format``; :data:`FOLDER_KINDS` maps that name to the class that loads it, so a front-end
never branches on the kind: ``load_model_folder(path).predict_proba(images)``.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..storage import ModelFolderError, declared_format

# config.json's "format" -> (module, class) of the FittedModel that reads it
FOLDER_KINDS = {"wordsight-classifier": (".classifier", "Classifier"), "wordsight-ensemble": (".ensemble", "Ensemble"),
                "wordsight-anomaly-detector": (".anomaly", "AnomalyDetector")}


@runtime_checkable
class FittedModel(Protocol):
    """A fitted image model: its classes, probabilities, features, words, and its saved folder."""

    classes_: np.ndarray

    def predict_proba(self, X) -> np.ndarray:
        """(n_inputs, n_classes), columns in ``classes_`` order; NaN rows for unreadable images."""

    def featurize(self, X):
        """The :class:`~.blocks.Featurized` rows the probabilities are computed from."""

    def describe(self, X) -> list:
        """Per input, the model's words for it (None where it could not be read)."""

    def save(self, folder) -> str:
        """Write the model as a :mod:`wordsight.storage` folder (atomically); returns the folder."""

    @classmethod
    def load(cls, folder) -> "FittedModel":
        """The model saved in ``folder``, every file verified."""


def load_model_folder(folder, fmt: str | None = None) -> FittedModel:
    """The fitted model saved in ``folder``, as the kind its ``config.json`` declares (a
    Classifier, an ensemble of them, ...); refused in one :class:`ModelFolderError` line otherwise.
    ``fmt``: the declared format when the caller has read it already (``storage.declared_format``)."""
    from importlib import import_module

    fmt = declared_format(folder) if fmt is None else fmt
    if fmt not in FOLDER_KINDS:
        raise ModelFolderError(f"{folder}: config.json declares format {fmt!r}, not a model wordsight loads "
                               f"({', '.join(FOLDER_KINDS)})")
    module, name = FOLDER_KINDS[fmt]
    return getattr(import_module(module, __package__), name).load(folder)
