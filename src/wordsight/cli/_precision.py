"""The precision (and engine) a fitted model's image features are computed with here, as one phrase.

``fit``, ``predict`` and ``serve`` print it: ``features: efficientnet-lite0 bf16 (openvino)``.
"""
from __future__ import annotations


def recorded_precisions(model) -> dict[str, str] | None:
    """What the fit recorded per encoder (an ensemble: its members'; None where nothing was)."""
    members = getattr(model, "members", None)
    if members:
        return {e: p for m in members for e, p in getattr(getattr(m, "state_", None), "precisions", {}).items()}
    return getattr(getattr(model, "state_", None), "precisions", None)


def features_phrase(model) -> str:
    """``features: <encoder> <precision> (<engine>), ...`` for a fitted model on this machine."""
    from ..estimator.precision import for_features
    from ..features.engines.batch import used
    from ..features.engines.default_precision import describe

    wanted = for_features(list(model.encoder_names), getattr(model, "precision", "auto"), recorded_precisions(model))
    return "features: " + describe({e: used(e, "auto", p) for e, p in wanted.items()})


def encoder_phrase(name: str, precision: str = "auto") -> str:
    """``features: <encoder> <precision> (<engine>)`` for one encoder read at ``precision``."""
    from ..features.engines.batch import used
    from ..features.engines.default_precision import describe

    return "features: " + describe({name: used(name, "auto", precision)})
