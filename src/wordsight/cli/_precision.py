"""The precision (and engine) a fitted model's image features are computed with here, as one phrase.

``fit``, ``predict`` and ``serve`` print it: ``features: efficientnet-lite0 bf16 (openvino)``.
"""
from __future__ import annotations


def add_precision_option(p, default: str | None = "auto", what: str = "") -> None:
    """``--precision`` of the verbs that compute image features."""
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "int8"], default=default,
                   help="image features' precision: auto (the fastest that passed the quality gate on this CPU), "
                   "fp32 (bit-for-bit the same on every machine), bf16 or int8 (past the gate)" + what)


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


def use_precision(model, precision: str | None) -> str:
    """Set ``precision`` on ``model`` when given (else the fit's recorded one stays); its phrase."""
    if precision is not None and hasattr(model, "precision"):
        model.set_params(precision=precision)
    return features_phrase(model)


def encoder_phrase(name: str, precision: str = "auto") -> str:
    """``features: <encoder> <precision> (<engine>)`` for one encoder read at ``precision``."""
    from ..features.engines.batch import used
    from ..features.engines.default_precision import describe

    return "features: " + describe({name: used(name, "auto", precision)})
