"""What a ``/v1/explain`` request may ask beyond method and target: its LIME and SHAP budgets,
bounded by the table every count goes through (:data:`wordsight.frontend.counts.COUNTS`, as the
CLI's ``--lime-samples`` and ``--shap-evals``), and the request's deadline, which the explanation
itself honours on the model thread (:mod:`wordsight._util.deadlines`)."""
from __future__ import annotations

import time

from ..frontend.counts import check_count
from .error_responses import ApiError


def explain_options(request, limits, lime_samples, shap_evals) -> dict:
    """The options :meth:`~.predictor.Predictor.explain_batch` takes, counts checked (422 out of range)."""
    start = request.scope.get("wordsight", {}).get("start", time.monotonic())
    return {"lime_samples": None if lime_samples is None else check_count("lime_samples", lime_samples),
            "shap_evals": None if shap_evals is None else check_count("shap_evals", shap_evals),
            "deadline": start + limits.timeout_s}


def refuse_timeouts(rows: list[dict], limits) -> None:
    """A 504 when an explanation stopped at the request's deadline."""
    if any(r.get("code") == "timeout" for r in rows):
        raise ApiError(504, "timeout", f"the request took longer than the limit of {limits.timeout_s:g} s "
                       "(the explanation stopped there)")
