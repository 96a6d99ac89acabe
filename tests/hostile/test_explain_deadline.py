"""Issue 28, defect 7: ``/v1/explain`` with LIME or SHAP kept the model thread busy 12-19 s past
its 504, so other clients' predictions timed out too. The explanation now stops at the request's
deadline, and its LIME / SHAP budgets are bounded like the CLI's. A real server on loopback."""
from __future__ import annotations

import time

import pytest

from .conftest import API_KEY

pytest.importorskip("fastapi")
pytest.importorskip("lime")


def _explain(url, photo, timeout=60, **data):
    import httpx

    return httpx.post(url + "/v1/explain", headers={"X-API-Key": API_KEY}, timeout=timeout, data=data,
                      files=[("files", ("cat.jpg", photo, "image/jpeg"))])


@pytest.mark.parametrize("method", ["lime", "shap"])
def test_explanation_stops_at_the_deadline_and_others_are_served(short_server, photos, method):
    """short_server answers 504 after 3 s. The explanation's budget (10,000 model calls) would
    take minutes; the prediction sent right after the 504 is answered in time."""
    import httpx

    field = "lime_samples" if method == "lime" else "shap_evals"
    predict = dict(headers={"X-API-Key": API_KEY}, timeout=60, files=[("files", ("cat.jpg", photos["cat"], "image/jpeg"))])
    assert httpx.post(short_server.url + "/v1/predict", **predict).status_code == 200  # warm (first-call costs)
    start = time.monotonic()
    r = _explain(short_server.url, photos["cat"], method=method, **{field: "10000"})
    assert r.status_code == 504, r.text
    assert r.json()["error"] == "timeout"
    assert time.monotonic() - start < 5
    p = httpx.post(short_server.url + "/v1/predict", **predict)
    assert p.status_code == 200, p.text  # within the 3 s; was a 504: the model thread was still explaining


def test_the_deadline_stops_the_work_itself(model_dir, photos):
    """Without a server: the explanation raises once the deadline passes, checked between its
    batches of model calls (a past deadline stops it before the first batch)."""
    import time as _time

    from wordsight._util.deadlines import DeadlineExceeded, deadline
    from wordsight.estimator import load_model_folder
    from wordsight.explain import explain

    model = load_model_folder(model_dir)
    with deadline(_time.monotonic() - 0.01), pytest.raises(DeadlineExceeded, match="the explanation stopped"):
        explain(model, [photos["cat"]], method="lime", lime_samples=10)
    with deadline(_time.monotonic() + 600):
        [e] = explain(model, [photos["cat"]], method="lime", lime_samples=10)
    assert e.evidence["method_facts"]["samples"] == 10


@pytest.mark.parametrize("field,value,message", [
    ("lime_samples", "0", "lime_samples must be between 1 and 10,000"),
    ("lime_samples", "100000000", "lime_samples must be between 1 and 10,000"),
    ("shap_evals", "10001", "shap_evals must be between 1 and 10,000"),
])
def test_budgets_bounded_like_the_cli(server, photos, field, value, message):
    start = time.monotonic()
    r = _explain(server.url, photos["cat"], method="lime" if field == "lime_samples" else "shap", **{field: value})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == f"invalid_{field}" and message in r.json()["detail"]
    assert time.monotonic() - start < 2  # refused before any work


def test_a_small_budget_is_used(server, photos):
    r = _explain(server.url, photos["cat"], method="lime", lime_samples="12")
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["evidence"]["method_facts"]["samples"] == 12
