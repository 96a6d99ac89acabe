"""Anomaly detection from normal images only (issue 23): :class:`AnomalyDetector` over frozen
features, its scorers (``knn``: DN2; ``mahalanobis``: Ledoit-Wolf; ``patchcore``: a coreset memory
bank of patch features that also localises, :mod:`.patchcore`), the words (``words``, or fused with
an image scorer: :mod:`.words`) and its saved folder."""
from .detector import AnomalyDetector
from .scorers import SCORERS

__all__ = ["AnomalyDetector", "SCORERS"]
