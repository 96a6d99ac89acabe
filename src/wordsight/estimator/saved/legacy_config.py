"""The parameters of model folders saved before fusions and heads took their own options.

Those configs hold the fusion's and head's options as flat Classifier parameters (``C``,
``class_weight``, ``head_params``, ``text_weight``, ``paired_text_weight``, ``prior_weight``,
``class_descriptions``, ``zero_shot_method``, ``prior_view``); :func:`parts_from_flat` turns them
into the fusion and head objects of today's Classifier, with the values those options had.
"""
from __future__ import annotations

from ..fusion import fusion_class
from ..heads import head_taking

HEAD_OPTIONS = ("C", "class_weight", "head_params")
# Which flat option became which parameter of each fusion.
FUSION_OPTIONS = {
    "text": {"text_weight": "text_weight"},
    "concat": {"text_weight": "text_weight"},
    "prior": {"prior_view": "view", "class_descriptions": "descriptions", "prior_weight": "weight",
              "zero_shot_method": "method"},
    "paired": {"paired_text_weight": "weight"},
    "late": {"paired_text_weight": "weight"},
}
FLAT = (*HEAD_OPTIONS, *sorted({k for m in FUSION_OPTIONS.values() for k in m}))


def parts_from_flat(params: dict) -> dict:
    """``params`` of an old config.json with its flat options replaced by ``fusion`` and ``head`` objects."""
    params = dict(params)
    flat = {k: params.pop(k) for k in FLAT if k in params}
    fusion = params.get("fusion", "image")
    params["fusion"] = fusion_class(fusion)(**{new: flat[old] for old, new in FUSION_OPTIONS.get(fusion, {}).items()
                                               if old in flat})
    given = {"C": flat.get("C"), "class_weight": flat.get("class_weight"),
             "random_state": params.get("random_state", 0), **(flat.get("head_params") or {})}
    # the old Classifier passed C and class_weight to every head; JSON made tuples lists
    params["head"] = head_taking(params.get("head", "logistic"),
                                 **{k: tuple(v) if isinstance(v, list) else v for k, v in given.items()})
    return params
