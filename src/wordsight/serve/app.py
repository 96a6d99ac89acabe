"""The FastAPI app: routes, start-up (the model loads once per worker), limits, auth, metrics.

    from wordsight.serve import create_app, ServeSettings
    app = create_app(ServeSettings(model_dir="my-model/"))   # any ASGI server can run it

``wordsight serve MODEL_DIR`` runs it on uvicorn. The routes are thin: check the uploads, hand
the images to a :class:`~.batcher.MicroBatcher`, shape the answer; the pipeline is
:class:`~.predictor.Predictor`, which only calls wordsight's public API.
"""
# No ``from __future__ import annotations`` here: FastAPI reads the route signatures' annotations,
# which name objects local to create_app.
import asyncio
import hmac
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from .._version import __version__
from ..language._text import TextDeadlineExceeded
from ..language._text import deadline as text_deadline
from .batcher import MicroBatcher
from .errors import ApiError, error_body, install_handlers
from .metrics import CONTENT_TYPE, ServerMetrics
from .predictor import ZERO_SHOT_METHODS, Predictor, _py
from .settings import Batching, ServeSettings
from .texts import parse_texts, with_texts
from .uploads import read_uploads

STATIC = Path(__file__).parent / "static"
SETTINGS_ENV = "WORDSIGHT_SERVE_SETTINGS"
MAX_CLASSES = 1000
MAX_CLASS_NAME = 200
MAX_DESCRIPTIONS_PER_CLASS = 32
MAX_DESCRIPTION = 500  # characters per description (MiniLM reads 256 word pieces at most anyway)
MAX_FORM_FIELD = 256 * 1024  # bytes of one non-file form field (classes, descriptions)
MAX_JSON_DEPTH = 3  # {"class": ["text", ...]} is 2 deep; 1,000-deep JSON raised RecursionError
PROTECTED = ("/v1/", "/metrics")  # what needs the API key when one is set
# After an early 413 the rest of the body is read and dropped, within these bounds, before the
# answer goes out: closing a socket with unread data makes the kernel send a reset, and the client
# then lost the 413 itself ("peer closed connection", seen in 1 of 4 CI runs). nginx's lingering
# close does the same; a body beyond these bounds is not read and its client may see the reset.
LINGER_BYTES = 16 * 1024 * 1024
LINGER_S = 2.0
LINGER_IDLE_S = 0.25  # a client that sent only the headers (waiting for the answer) is not waited for


class ServeState:
    """What one worker process holds: settings, the loaded pipeline, its batchers, metrics."""

    def __init__(self, settings: ServeSettings):
        self.settings = settings
        self.api_key = settings.resolved_api_key()
        self.metrics = ServerMetrics()
        self.executor: ThreadPoolExecutor | None = None
        self.predictor: Predictor | None = None
        self.predict_batcher: MicroBatcher | None = None
        self.concepts_batcher: MicroBatcher | None = None
        self.explain_batcher: MicroBatcher | None = None
        self.ready = False
        self.startup_error: str | None = None


class RequestGuard:
    """Pure ASGI middleware: the API key (401 before a byte of the body is read), the body-size
    limit (413, checked on Content-Length and again while the body streams in), the request timeout
    (504), per-route metrics for every answer, and a one-line start-up failure."""

    def __init__(self, app, state: ServeState):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, self._lifespan_send(send))
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        scope.setdefault("wordsight", {})["start"] = time.monotonic()
        sent = {"status": None}

        async def tracked_send(message):
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
            await send(message)

        limits = self.state.settings.limits
        timeout, max_body = limits.timeout_s, limits.max_body_bytes
        too_large = (f"request body larger than {max_body:,} bytes ({limits.max_images} images of at most "
                     f"{limits.max_upload_bytes:,} bytes each, plus form fields)")
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > max_body:
                if message.get("more_body", False):
                    await _drain(receive, LINGER_BYTES)
                raise ApiError(413, "request_too_large", too_large)
            return message

        try:
            length = int(dict(scope.get("headers", [])).get(b"content-length", b"-1"))
        except ValueError:
            length = -1
        try:
            if not self._authorized(scope):
                scope["wordsight"]["error"] = "unauthorized"
                await _send_json(tracked_send, 401, error_body(401, UNAUTHORIZED, "unauthorized"),
                                 [(b"www-authenticate", b"Bearer")])
                return
            if length > max_body:
                scope.setdefault("wordsight", {})["error"] = "request_too_large"
                if length <= max_body + LINGER_BYTES:
                    await _drain(receive, length)
                await _send_json(tracked_send, 413, error_body(413, too_large, "request_too_large"))
                return
            await asyncio.wait_for(self.app(scope, limited_receive, tracked_send), timeout)
        except asyncio.TimeoutError:
            if sent["status"] is None:
                scope.setdefault("wordsight", {})["error"] = "timeout"
                await _send_json(tracked_send, 504, error_body(
                    504, f"the request took longer than the limit of {timeout:g} s", "timeout"))
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "other"
            status = sent["status"] or 500
            m = self.state.metrics
            m.requests.inc(label, scope.get("method", ""), str(status))
            m.latency.observe(time.perf_counter() - start, label)
            if status >= 400:
                m.errors.inc(label, scope.get("wordsight", {}).get("error") or str(status))


    def _authorized(self, scope) -> bool:
        """The key, from the headers alone: a request without it is refused before its body is read."""
        key = self.state.api_key
        if key is None or not scope.get("path", "").startswith(PROTECTED):
            return True
        given = None
        for name, value in scope.get("headers", []):
            if name == b"x-api-key":
                given = value
            elif name == b"authorization" and given is None and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
        return given is not None and hmac.compare_digest(given, key.encode())

    def _lifespan_send(self, send):
        """Start-up failures as one line (``model: why``), not the traceback Starlette sends."""
        async def lifespan_send(message):
            if message.get("type") == "lifespan.startup.failed" and self.state.startup_error:
                message = {**message, "message": self.state.startup_error}
            await send(message)

        return lifespan_send


UNAUTHORIZED = "missing or wrong API key: send it in the X-API-Key header (or Authorization: Bearer)"


async def _drain(receive, max_bytes: int) -> int:
    """Reads and drops the request body until it ends, ``max_bytes`` were read, ``LINGER_S``
    passed or nothing came for ``LINGER_IDLE_S``; returns the bytes dropped."""
    dropped = 0
    deadline = time.monotonic() + LINGER_S
    while dropped < max_bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            message = await asyncio.wait_for(receive(), min(left, LINGER_IDLE_S))
        except asyncio.TimeoutError:
            break
        dropped += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    return dropped


async def _send_json(send, status: int, body: dict, headers=()) -> None:
    """An answer sent before the body was read: the connection closes after it, so that the unread
    body is never received."""
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": data})


def _lifespan(state: ServeState):
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loop = asyncio.get_running_loop()
        state.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wordsight-model")
        try:
            state.predictor = await loop.run_in_executor(state.executor, Predictor, state.settings)
            if state.settings.warm_up:
                await loop.run_in_executor(state.executor, state.predictor.warm_up)
            p, b = state.predictor, state.settings.batching
            if p.has_model:
                state.predict_batcher = MicroBatcher(p.predict_batch, b, state.executor, "classifier", state.metrics)
                state.predict_batcher.start()
            if p.zero_shot_error is None:
                state.concepts_batcher = MicroBatcher(p.concepts_batch, b, state.executor, "zero-shot",
                                                      state.metrics)
                state.concepts_batcher.start()
            if p.explain_error is None:  # one image per call: an explanation is a backward pass each
                state.explain_batcher = MicroBatcher(p.explain_batch, Batching(max_batch=1, max_wait_ms=0),
                                                     state.executor, "explain", state.metrics)
                state.explain_batcher.start()
            state.ready = True
            yield
        except Exception as e:
            what = state.settings.model_dir or "zero-shot"
            state.startup_error = f"wordsight serve: cannot start ({what}): {e}".splitlines()[0]
            raise
        finally:
            state.ready = False
            for batcher in (state.predict_batcher, state.concepts_batcher, state.explain_batcher):
                if batcher is not None:
                    await batcher.stop()
            state.executor.shutdown(wait=False, cancel_futures=True)

    return lifespan


def _auth_dependency(state: ServeState):
    key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the server's API key")
    bearer = HTTPBearer(auto_error=False, description="the server's API key as a bearer token")

    async def require_key(request: Request, key: Annotated[str | None, Depends(key_header)],
                          token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]):
        if state.api_key is None:
            return
        given = key or (token.credentials if token else None)  # RequestGuard checked it already; kept for /docs
        if given is None or not hmac.compare_digest(given.encode(), state.api_key.encode()):
            request.scope.setdefault("wordsight", {})["error"] = "unauthorized"
            raise ApiError(401, "unauthorized", UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})

    return require_key


def _fail(request: Request, err: ApiError):
    request.scope.setdefault("wordsight", {})["error"] = err.code
    raise err


def _top_k(request: Request, top_k: int | None, default: int, n_classes: int) -> int:
    k = default if top_k is None else top_k
    if k < 1:
        _fail(request, ApiError(422, "invalid_top_k", f"top_k must be >= 1, not {k}"))
    return min(k, n_classes)


def _results(request: Request, uploads, rows) -> None:
    """Refuse the request (422) when the pipeline could not read one of its images."""
    for u, r in zip(uploads, rows):
        if "error" in r:
            _fail(request, ApiError(422, r.get("code", "unreadable_image"), f"{u.name}: {r['error']}", u.name))


def json_depth(text: str) -> int:
    """How deeply ``text``'s JSON arrays and objects nest, counted without parsing (brackets inside
    strings do not count), so that a 1,000-deep value is refused before ``json.loads`` recurses."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _json_field(field: str, text: str, code: str, max_depth: int):
    if len(text) > MAX_FORM_FIELD:
        raise ApiError(413, code, f"{field}: {len(text):,} characters, more than the limit of {MAX_FORM_FIELD:,}")
    if json_depth(text) > max_depth:
        raise ApiError(422, code, f"{field}: JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ApiError(422, code, f"{field}: not valid JSON ({e.msg})") from None
    except RecursionError:  # json_depth should have caught it; never a 500
        raise ApiError(422, code, f"{field}: JSON nested too deeply") from None


def parse_classes(text: str) -> list[str]:
    """Class names from a form field: a JSON list, or one per line, or comma-separated."""
    text = (text or "").strip()
    if text.startswith("["):
        names = _json_field("classes", text, "invalid_classes", 1)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ApiError(422, "invalid_classes", "classes: a JSON value must be a list of strings")
    else:
        if len(text) > MAX_FORM_FIELD:
            raise ApiError(413, "invalid_classes", f"classes: more than {MAX_FORM_FIELD:,} characters")
        names = text.splitlines() if "\n" in text else text.split(",")
    names = [n.strip() for n in names if n.strip()]
    if len(names) < 2:
        shown = names if len(repr(names)) < 200 else f"{repr(names)[:200]}..."
        raise ApiError(422, "invalid_classes", f"classes: at least two class names are needed, got {shown}")
    if len(names) > MAX_CLASSES or any(len(n) > MAX_CLASS_NAME for n in names):
        raise ApiError(422, "invalid_classes", f"classes: at most {MAX_CLASSES} names of at most "
                       f"{MAX_CLASS_NAME} characters")
    dup = sorted({n for n in names if names.count(n) > 1}) if len(set(names)) < len(names) else []
    if dup:
        raise ApiError(422, "invalid_classes", f"classes: repeated names: {', '.join(dup)[:500]}")
    return names


def parse_descriptions(text: str | None, classes: list[str]) -> dict | None:
    if not text or not text.strip():
        return None
    d = _json_field("descriptions", text, "invalid_descriptions", MAX_JSON_DEPTH - 1)
    ok = isinstance(d, dict) and all(isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
                                     for v in d.values())
    if not ok:
        raise ApiError(422, "invalid_descriptions", "descriptions: expected a JSON object {class name: text or "
                       "[texts]}")
    unknown = sorted(set(d) - set(classes))
    if unknown:
        raise ApiError(422, "invalid_descriptions", f"descriptions: not among the classes: {', '.join(unknown)[:500]}")
    for c, v in d.items():
        texts = [v] if isinstance(v, str) else v
        if len(texts) > MAX_DESCRIPTIONS_PER_CLASS:
            raise ApiError(422, "invalid_descriptions", f"descriptions: {c}: {len(texts)} descriptions; the limit "
                           f"is {MAX_DESCRIPTIONS_PER_CLASS} per class")
        if any(len(t) > MAX_DESCRIPTION for t in texts):
            raise ApiError(422, "invalid_descriptions", f"descriptions: {c}: a description longer than "
                           f"{MAX_DESCRIPTION} characters")
    return d or None


def zero_shot_texts(classes: list[str], descriptions: dict | None, method: str) -> int:
    """How many texts the text encoder embeds for this class list (what a zero-shot request costs)."""
    if method == "templates":
        from ..language.zeroshot import DEFAULT_TEMPLATES

        return len(classes) * len(DEFAULT_TEMPLATES)
    if method == "descriptions" and descriptions:
        return sum(max(1, len([v] if isinstance(v, str) else v)) for v in
                   (descriptions.get(c, []) for c in classes))
    return len(classes)


def create_app(settings: ServeSettings | None = None, **kwargs) -> FastAPI:
    """The ASGI app for ``settings`` (or ``ServeSettings(**kwargs)``). The model is loaded when the
    app starts (its lifespan), once per worker process."""
    settings = settings or ServeSettings(**kwargs)
    state = ServeState(settings)
    limits = settings.limits
    app = FastAPI(
        title="wordsight", version=__version__, lifespan=_lifespan(state),
        description="Image classification with language models: top-k classes with each image's "
        "description in words, and zero-shot classification from class names.",
        # One file more than the limit: read_uploads' own check then answers one image too many with
        # the count and the limit; the multipart parser stays the backstop against thousands of parts.
        form_limits={"max_files": limits.max_images + 1, "max_fields": 16, "max_part_size": MAX_FORM_FIELD},
    )
    app.state.wordsight = state
    install_handlers(app)
    app.add_middleware(RequestGuard, state=state)
    auth = [Depends(_auth_dependency(state))]

    # ------------------------------------------------------------------ pages and probes
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
        info = state.predictor.info()
        info["limits"] = {"max_upload_bytes": limits.max_upload_bytes, "max_pixels": limits.max_pixels,
                          "max_side": limits.max_side, "max_aspect": limits.max_aspect,
                          "max_images": limits.max_images, "max_request_bytes": limits.max_body_bytes,
                          "max_zero_shot_texts": limits.max_zero_shot_texts, "timeout_s": limits.timeout_s}
        info["batching"] = {"max_batch": settings.batching.max_batch, "max_wait_ms": settings.batching.max_wait_ms}
        info["top_k"] = settings.top_k
        info["explain"] = state.explain_batcher is not None
        return info

    # ------------------------------------------------------------------ predictions
    Files = Annotated[list[UploadFile], File(description=f"one to {limits.max_images} images "
                                                         f"(JPEG, PNG, WebP, GIF, BMP, TIFF)")]
    TopK = Annotated[int | None, Form(description=f"classes to return per image (default {settings.top_k})")]

    @app.post("/v1/predict", tags=["model"], summary="Top-k classes and a description of each image",
              dependencies=auth)
    async def predict(request: Request, files: Files, top_k: TopK = None,
                      texts: Annotated[str | None, Form(description="paired-text models (fusion paired or late): a "
                                                    "JSON list, one text (or null) per image")] = None):
        p = state.predictor
        if not p.has_model:
            _fail(request, ApiError(404, "no_model", "this server has no trained model (it was started for "
                                    "zero-shot only): use POST /v1/zeroshot"))
        k = _top_k(request, top_k, settings.top_k, len(p.classes))
        try:
            uploads = await read_uploads(files, limits)
            paired = parse_texts(texts, len(uploads), p.classifier.reads_texts, p.classifier.fusion_name)
        except ApiError as e:
            _fail(request, e)
        rows = await state.predict_batcher.submit(with_texts([u.sample for u in uploads], paired))
        _results(request, uploads, [{"error": r.error} if r.error else {} for r in rows])
        return {"results": [
            {"file": u.name, "width": u.width, "height": u.height, "predicted": _py(r.predicted),
             "top_k": [{"class": _py(c), "probability": p_} for c, p_ in r.top_k[:k]],
             "description": r.description}
            for u, r in zip(uploads, rows)]}

    @app.post("/v1/describe", tags=["model"], summary="Each image in words: the ImageNet concepts it resembles",
              dependencies=auth)
    async def describe(request: Request, files: Files):
        """What ``wordsight describe`` prints (the plain view of the zero-shot encoder): the concepts
        above the encoder's measured threshold, or "no ImageNet concept fits well"."""
        if state.concepts_batcher is None:
            _fail(request, ApiError(503, "describe_unavailable",
                                    f"descriptions are not available: {state.predictor.zero_shot_error}"))
        try:
            uploads = await read_uploads(files, limits)
        except ApiError as e:
            _fail(request, e)
        rows = await state.concepts_batcher.submit([(u.sample, "plain") for u in uploads])
        _results(request, uploads, rows)
        return {"encoder": state.predictor.zero_shot_encoder, "results": [
            {"file": u.name, "width": u.width, "height": u.height, "description": r.get("description")}
            for u, r in zip(uploads, rows)]}

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
            _fail(request, ApiError(503, "zero_shot_unavailable", f"zero-shot is not available: {p.zero_shot_error}"))
        try:
            names = parse_classes(classes)
            desc = parse_descriptions(descriptions, names)
            method = method or ("descriptions" if desc else "names")
            if method not in ZERO_SHOT_METHODS:
                raise ApiError(422, "invalid_method", f"method must be one of {', '.join(ZERO_SHOT_METHODS)}, "
                               f"not {method[:100]!r}")
            n_texts = zero_shot_texts(names, desc, method)
            if n_texts > limits.max_zero_shot_texts:
                raise ApiError(422, "too_many_texts", f"classes and descriptions: {n_texts:,} texts to embed with "
                               f"method {method}; the limit is {limits.max_zero_shot_texts:,} per request")
            k = _top_k(request, top_k, settings.top_k, len(names))
            uploads = await read_uploads(files, limits)
        except ApiError as e:
            _fail(request, e)
        loop = asyncio.get_running_loop()
        view = await loop.run_in_executor(state.executor, p.zero_shot_view, [u.sample.data for u in uploads])
        rows = await state.concepts_batcher.submit([(u.sample, view) for u in uploads])
        _results(request, uploads, rows)
        readings = [r["reading"] for r in rows]
        left = limits.timeout_s - (time.monotonic() - request.scope.get("wordsight", {}).get("start", time.monotonic()))

        def classify():  # on the model thread; the text embedding stops at the request's deadline
            with text_deadline(max(left, 0.0)):
                return p.zero_shot_proba(names, desc, method, readings)

        try:
            P = await loop.run_in_executor(state.executor, classify)
        except TextDeadlineExceeded:
            _fail(request, ApiError(504, "timeout", f"the request took longer than the limit of {limits.timeout_s:g} s "
                                    "(embedding the class texts)"))
        out = []
        for u, r, probs in zip(uploads, rows, np.asarray(P)):
            order = np.argsort(-probs)[:k]
            out.append({"file": u.name, "width": u.width, "height": u.height, "predicted": names[order[0]],
                        "top_k": [{"class": names[j], "probability": float(probs[j])} for j in order],
                        "description": r.get("description")})
        return {"classes": names, "method": method, "view": view, "results": out}

    if _explain_importable():
        _add_explain_route(app, state, auth, Files)
    return app


def _explain_importable() -> bool:
    try:
        from ..explain import explain  # noqa: F401
    except ImportError:
        return False
    return True


def _add_explain_route(app: FastAPI, state: ServeState, auth, Files) -> None:
    """``POST /v1/explain``: present only when :mod:`wordsight.explain` is installed."""
    import base64

    from ..explain import METHODS

    @app.post("/v1/explain", tags=["model"], summary="Heatmap overlay (PNG, base64) and the evidence in words",
              dependencies=auth)
    async def explain_images(
        request: Request, files: Files,
        method: Annotated[str, Form(description=f"{' | '.join(METHODS)} (default gradcam)")] = "gradcam",
        target: Annotated[str | None, Form(description="the class to explain (default: the predicted one)")] = None,
    ):
        p = state.predictor
        if state.explain_batcher is None:
            _fail(request, ApiError(404, "no_model", f"explanations are not served here: {p.explain_error}"))
        if method not in METHODS:
            _fail(request, ApiError(422, "invalid_method",
                                    f"method must be one of {', '.join(METHODS)}, not {method[:100]!r}"))
        if target is not None and target not in [str(c) for c in p.classes]:
            _fail(request, ApiError(422, "invalid_target", f"target {target[:100]!r} is not one of the model's classes "
                                    f"{p.classes}"))
        if target is not None:
            target = next(c for c in p.classes if str(c) == target)
        try:
            uploads = await read_uploads(files, state.settings.limits)
        except ApiError as e:
            _fail(request, e)
        rows = await state.explain_batcher.submit([(u.sample.data, method, target) for u in uploads])
        _results(request, uploads, rows)
        return {"results": [
            {"file": u.name, "method": method, "target": r["target"],
             "heatmap_png": base64.b64encode(r["png"]).decode(), "heatmap_size": list(r["size"]),
             "evidence": r["evidence"]}
            for u, r in zip(uploads, rows)]}


def app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes: settings from ``$WORDSIGHT_SERVE_SETTINGS`` (JSON)."""
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise RuntimeError(f"${SETTINGS_ENV} is not set (the `wordsight serve` command sets it)")
    return create_app(ServeSettings.from_json(text))
