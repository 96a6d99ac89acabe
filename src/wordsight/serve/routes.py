"""The routes, one registration function each: read the request with :mod:`wordsight.frontend`
(the checks ``wordsight`` verbs use), hand the images to a :class:`~.batcher.MicroBatcher`, shape
the answer from :class:`~wordsight.io.records.Prediction` records. Bad input raises
:class:`~wordsight.frontend.InputError` (or :class:`~.error_responses.ApiError` for what only a server can
lack); the handlers of :mod:`.error_responses` answer both as JSON.
"""
# No ``from __future__ import annotations`` here: FastAPI reads the route signatures' annotations,
# which name objects local to the registration functions.
import asyncio
import time
from pathlib import Path
from typing import Annotated

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from .._version import __version__
from ..frontend import (
    attach_texts,
    check_top_k,
    parse_classes,
    parse_descriptions,
    parse_texts,
    result_json,
)
from ..frontend.upload_media import explain_input
from ..io.records import Prediction, predictions
from .answers import SetOptions, detector_json
from .error_responses import ApiError
from .explain_options import explain_options, refuse_timeouts
from .predictor import ZERO_SHOT_METHODS
from .prometheus import CONTENT_TYPE
from .uploads import read_uploads

STATIC = Path(__file__).parent / "static"


def add_routes(app, state, auth) -> None:
    """Every route of the app; ``auth`` is the dependency list of the routes behind the API key."""
    limits, top_k = state.settings.limits, state.settings.top_k
    files = Annotated[list[UploadFile], File(description=f"one to {limits.max_images} images "
                                                         "(JPEG, PNG, WebP, GIF, BMP, TIFF)")]
    k = Annotated[int | None, Form(description=f"classes to return per image (default {top_k})")]
    add_service_routes(app, state, auth)
    add_predict_route(app, state, auth, files, k)
    add_describe_route(app, state, auth, files)
    add_zeroshot_route(app, state, auth, files, k)
    if _explain_importable():
        add_explain_route(app, state, auth, files)


def refuse_failures(uploads, errors: list[dict | None]) -> None:
    """Refuse the request (422) when the pipeline could not read one of its images."""
    for u, e in zip(uploads, errors):
        if e is not None:
            raise ApiError(422, e.get("code", "unreadable_image"), f"{u.name}: {e['error']}", u.name)


def add_service_routes(app, state, auth) -> None:
    """The page, its files, the probes, the metrics and what is served."""
    @app.head("/", include_in_schema=False)
    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.head("/healthz", include_in_schema=False)
    @app.get("/healthz", tags=["service"], summary="Liveness and readiness")
    async def healthz():
        return {"status": "ok" if state.ready else "starting", "version": __version__}

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics (text format)", dependencies=auth,
             response_class=Response)
    async def metrics():
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/model", tags=["model"], summary="What this server serves", dependencies=auth)
    async def model_info():
        s = state.settings
        limits = s.limits
        info = state.predictor.info()
        info["limits"] = {"max_upload_bytes": limits.max_upload_bytes, "max_pixels": limits.max_pixels,
                          "max_side": limits.max_side, "max_aspect": limits.max_aspect,
                          "max_images": limits.max_images, "max_request_bytes": limits.max_body_bytes,
                          "max_zero_shot_texts": limits.max_zero_shot_texts, "timeout_s": limits.timeout_s}
        info["batching"] = {"max_batch": s.batching.max_batch, "max_wait_ms": s.batching.max_wait_ms}
        info["top_k"] = s.top_k
        info["explain"] = state.explain_batcher is not None
        return info


def add_predict_route(app, state, auth, Files, TopK) -> None:
    @app.post("/v1/predict", tags=["model"], summary="Top-k classes and a description of each image",
              dependencies=auth)
    async def predict(files: Files, top_k: TopK = None,
                      texts: Annotated[str | None, Form(description="paired-text models (fusion paired or late): a "
                                                    "JSON list, one text (or null) per image")] = None,
                      coverage: Annotated[float | None, Form(description="the prediction set of each image at this "
                                                             "coverage (e.g. 0.9)")] = None,
                      reject_rate: Annotated[float | None, Form(description="'unknown' at this false-reject rate of "
                                                                "the training images (e.g. 0.05)")] = None,
                      set_method: Annotated[str | None, Form(description="lac | aps | raps (default lac)")] = None):
        p = state.predictor
        if not p.has_model:
            raise ApiError(404, "no_model", "this server has no trained model (it was started for zero-shot only): "
                           "use POST /v1/zeroshot")
        k = check_top_k(state.settings.top_k if top_k is None else top_k, len(p.classes))
        options = SetOptions(p.classifier, coverage, reject_rate, set_method)
        uploads = await read_uploads(files, state.settings.limits)
        paired = parse_texts(texts, len(uploads), getattr(p.classifier, "reads_texts", False),
                             getattr(p.classifier, "fusion_name", None))
        answers = await state.predict_batcher.submit(attach_texts([u.sample for u in uploads], paired))
        refuse_failures(uploads, [{"error": a.error} if a.error else None for a in answers])
        if p.is_detector:
            return {"results": [detector_json(u, a) for u, a in zip(uploads, answers)]}
        return {"results": [p.thresholds.add_to(result_json(u, a.record, k), a, options) if options.asked
                            else result_json(u, a.record, k) for u, a in zip(uploads, answers)]}


def add_describe_route(app, state, auth, Files) -> None:
    @app.post("/v1/describe", tags=["model"], summary="Each image in words: the ImageNet concepts it resembles",
              dependencies=auth)
    async def describe(files: Files):
        """What ``wordsight describe`` prints (the plain view of the zero-shot encoder): the concepts
        above the encoder's measured threshold, or "no ImageNet concept fits well"."""
        if state.concepts_batcher is None:
            raise ApiError(503, "describe_unavailable",
                           f"descriptions are not available: {state.predictor.zero_shot_error}")
        uploads = await read_uploads(files, state.settings.limits)
        rows = await state.concepts_batcher.submit([(u.sample, "plain") for u in uploads])
        refuse_failures(uploads, [r if "error" in r else None for r in rows])
        return {"encoder": state.predictor.zero_shot_encoder, "results": [
            result_json(u, Prediction(u.sample.path, description=r["description"])) for u, r in zip(uploads, rows)]}


def zero_shot_texts(classes: list[str], descriptions: dict | None, method: str) -> int:
    """How many texts the text encoder embeds for this class list (what a zero-shot request costs)."""
    if method == "templates":
        from ..zeroshot.text_classifier import DEFAULT_TEMPLATES

        return len(classes) * len(DEFAULT_TEMPLATES)
    if method == "descriptions" and descriptions:
        return sum(max(1, len(descriptions[c])) for c in classes)
    return len(classes)


def add_zeroshot_route(app, state, auth, Files, TopK) -> None:
    from ..text._text import TextDeadlineExceeded
    from ..text._text import deadline as text_deadline

    limits = state.settings.limits

    @app.post("/v1/zeroshot", tags=["model"], summary="Classify images among class names given now",
              dependencies=auth)
    async def zeroshot(
        request: Request, files: Files,
        classes: Annotated[str, Form(description="class names: one per line, comma-separated, or a JSON list")],
        descriptions: Annotated[str | None, Form(
            description="optional JSON object {class name: description or [descriptions]}; classes left out "
                        "use their name")] = None,
        method: Annotated[str | None, Form(description="names | templates | descriptions (default: descriptions "
                                                       "when given, else names)")] = None,
        top_k: TopK = None,
    ):
        p = state.predictor
        if state.concepts_batcher is None:
            raise ApiError(503, "zero_shot_unavailable", f"zero-shot is not available: {p.zero_shot_error}")
        names = parse_classes(classes)
        desc = parse_descriptions(descriptions, names) if descriptions and descriptions.strip() else None
        method = method or ("descriptions" if desc and any(desc.values()) else "names")
        if method not in ZERO_SHOT_METHODS:
            raise ApiError(422, "invalid_method", f"method must be one of {', '.join(ZERO_SHOT_METHODS)}, "
                           f"not {method[:100]!r}")
        n_texts = zero_shot_texts(names, desc, method)
        if n_texts > limits.max_zero_shot_texts:
            raise ApiError(422, "too_many_texts", f"classes and descriptions: {n_texts:,} texts to embed with "
                           f"method {method}; the limit is {limits.max_zero_shot_texts:,} per request")
        k = check_top_k(state.settings.top_k if top_k is None else top_k, len(names))
        uploads = await read_uploads(files, limits)
        loop = asyncio.get_running_loop()
        view = await loop.run_in_executor(state.executor, p.zero_shot_view, [u.sample.data for u in uploads])
        rows = await state.concepts_batcher.submit([(u.sample, view) for u in uploads])
        refuse_failures(uploads, [r if "error" in r else None for r in rows])
        left = limits.timeout_s - (time.monotonic() - request.scope.get("wordsight", {}).get("start", time.monotonic()))

        def classify():  # on the model thread; the text embedding stops at the request's deadline
            with text_deadline(max(left, 0.0)):
                return p.zero_shot_proba(names, desc, method, [r["reading"] for r in rows])

        try:
            P = await loop.run_in_executor(state.executor, classify)
        except TextDeadlineExceeded:
            raise ApiError(504, "timeout", f"the request took longer than the limit of {limits.timeout_s:g} s "
                           "(embedding the class texts)") from None
        records = predictions([u.sample.path for u in uploads], [None] * len(uploads), names, P, k,
                              [r.get("description") for r in rows])
        return {"classes": names, "method": method, "view": view,
                "results": [result_json(u, r) for u, r in zip(uploads, records)]}


def _explain_importable() -> bool:
    try:
        from ..explain import explain  # noqa: F401
    except ImportError:
        return False
    return True


def add_explain_route(app, state, auth, Files) -> None:
    """``POST /v1/explain``: present only when :mod:`wordsight.explain` is installed."""
    import base64

    from ..explain import METHODS

    @app.post("/v1/explain", tags=["model"], summary="Heatmap overlay (PNG, base64) and the evidence in words",
              dependencies=auth)
    async def explain_images(
        request: Request, files: Files,
        method: Annotated[str, Form(description=f"{' | '.join(METHODS)} (default gradcam)")] = "gradcam",
        target: Annotated[str | None, Form(description="the class to explain (default: the predicted one)")] = None,
        lime_samples: Annotated[int | None, Form(description="LIME perturbations (default 200)")] = None,
        shap_evals: Annotated[int | None, Form(description="SHAP model calls (default 200)")] = None,
    ):
        p = state.predictor
        if state.explain_batcher is None:
            raise ApiError(404, "no_model", f"explanations are not served here: {p.explain_error}")
        if method not in METHODS:
            raise ApiError(422, "invalid_method", f"method must be one of {', '.join(METHODS)}, not {method[:100]!r}")
        if target is not None and target not in [str(c) for c in p.classes]:
            raise ApiError(422, "invalid_target", f"target {target[:100]!r} is not one of the model's classes "
                           f"{p.classes}")
        if target is not None:
            target = next(c for c in p.classes if str(c) == target)
        options = explain_options(request, state.settings.limits, lime_samples, shap_evals)
        uploads = await read_uploads(files, state.settings.limits)
        rows = await state.explain_batcher.submit([(explain_input(u.sample), method, target, options) for u in uploads])
        refuse_timeouts(rows, state.settings.limits)
        refuse_failures(uploads, [r if "error" in r else None for r in rows])
        return {"results": [
            {"file": u.name, "method": method, "target": r["target"],
             "heatmap_png": base64.b64encode(r["png"]).decode(), "heatmap_size": list(r["size"]),
             "evidence": r["evidence"]}
            for u, r in zip(uploads, rows)]}
