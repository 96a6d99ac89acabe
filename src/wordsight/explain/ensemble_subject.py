"""Explaining an :class:`~wordsight.estimator.ensemble.Ensemble`: LIME and the words on the whole
ensemble, Grad-CAM per member.

LIME (and the deletion check) re-run the model on perturbed views: here each member's own
prediction code (:class:`ClassifierSubject.proba_views`) combined exactly as the ensemble combines
them, so every member's head works. The words are the image's (its ImageNet concepts, the class's
texts: read off the first member, they do not depend on the head) plus each member's probability
for the class and its weight. Gradient maps need one feature map whose gradient is the ensemble's;
the members run the explained encoder separately, so Grad-CAM is refused here with the way to
get it per member: each member is a saved Classifier folder (``members/<i>``) to explain.
"""
from __future__ import annotations

import numpy as np

from ..encoders.tilebag import is_bag
from ._pipeline import SUBJECT_TYPES, ClassifierSubject, Subject


class EnsembleSubject(Subject):
    """A fitted ensemble, explained through one encoder's view of the image."""

    def __init__(self, model, encoder: str | None = None):
        self.model = model
        self.classes = list(model.classes_)
        self.encoder_names = list(model.encoder_names)
        self.probs_encoder = model.probs_encoder_
        if encoder is None:
            cnn = [n for n in self.encoder_names if hasattr(self.encoder(n), "forward_features")]
            encoder = (sorted(cnn, key=is_bag) or self.encoder_names)[0]  # a whole image's before a tile bag's
        if encoder not in self.encoder_names:
            raise ValueError(f"encoder {encoder!r} is not one of this ensemble's encoders {self.encoder_names}")
        self.encoder_name = encoder
        self.members = []
        for m in model.members:
            s = ClassifierSubject(m, encoder if encoder in m.encoder_names else None)
            # the views are the explained encoder's; a member without it preprocesses them its own way
            s.encoder_name = encoder
            self.members.append(s)
        self.small_input = self.members[0].small_input  # the ensemble reads images as its first member

    def scores(self, inputs):
        raise ValueError("Grad-CAM is defined per member of an ensemble: explain the member folders "
                         "(<ensemble>/members/<i>, each a saved Classifier), or use method='lime' on the ensemble")

    def member_probas(self, views: np.ndarray, batch_size: int = 32) -> list[np.ndarray]:
        return [s.proba_views(views, batch_size) for s in self.members]

    def proba_views(self, views, batch_size=32):
        from ..estimator.ensemble import combine

        m = self.model
        return np.asarray(combine(m.kind, self.member_probas(views, batch_size), m.weights, m.meta), np.float64)


SUBJECT_TYPES.append((lambda model: getattr(model, "members", None) is not None, EnsembleSubject))
