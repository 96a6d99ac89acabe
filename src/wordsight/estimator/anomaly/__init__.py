"""Anomaly detection from normal images only (issue 23): :class:`AnomalyDetector` over frozen pooled
features, its scorers (``knn``: DN2; ``mahalanobis``: Ledoit-Wolf) and its saved folder."""
from .detector import AnomalyDetector
from .scorers import SCORERS

__all__ = ["AnomalyDetector", "SCORERS"]
