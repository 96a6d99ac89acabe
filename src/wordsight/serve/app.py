"""The FastAPI app: start-up (the model loads once per worker), the request guard, auth, routes.

    from wordsight.serve import create_app, ServeSettings
    app = create_app(ServeSettings(model_dir="my-model/"))   # any ASGI server can run it

``wordsight serve MODEL_DIR`` runs it on uvicorn. The routes (:mod:`.routes`) are thin: read the
request with :mod:`wordsight.frontend`, hand the images to a :class:`~.batcher.MicroBatcher`,
shape the answer; the pipeline is :class:`~.predictor.Predictor`, which only calls wordsight's
public API.
"""
# No ``from __future__ import annotations`` here: FastAPI reads require_key's annotations.
import hmac
import os
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from .._version import __version__
from ..frontend import MAX_FIELD
from .docs_page import DOCS_OFF, add_docs
from .error_responses import ApiError, install_handlers
from .guard import UNAUTHORIZED, RequestGuard
from .routes import add_routes
from .settings import ServeSettings
from .worker_state import ServeState, lifespan

SETTINGS_ENV = "WORDSIGHT_SERVE_SETTINGS"


def create_app(settings: ServeSettings | None = None, **kwargs) -> FastAPI:
    """The ASGI app for ``settings`` (or ``ServeSettings(**kwargs)``). The model is loaded when the
    app starts (its lifespan), once per worker process."""
    settings = settings or ServeSettings(**kwargs)
    state = ServeState(settings)
    app = FastAPI(
        title="wordsight", version=__version__, lifespan=lifespan(state),
        description="Image classification with language models: top-k classes with each image's "
        "description in words, and zero-shot classification from class names.",
        # One file more than the limit: read_uploads' own check then answers one image too many with
        # the count and the limit; the multipart parser stays the backstop against thousands of parts.
        form_limits={"max_files": settings.limits.max_images + 1, "max_fields": 16, "max_part_size": MAX_FIELD},
        **DOCS_OFF,
    )
    app.state.wordsight = state
    install_handlers(app)
    app.add_middleware(RequestGuard, state=state)
    add_routes(app, state, [Depends(_auth_dependency(state))])
    add_docs(app)
    return app


def _auth_dependency(state: ServeState):
    """The API key as a dependency: :class:`~.guard.RequestGuard` already checked it; this shows it in /docs."""
    key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the server's API key")
    bearer = HTTPBearer(auto_error=False, description="the server's API key as a bearer token")

    async def require_key(request: Request, key: Annotated[str | None, Depends(key_header)],
                          token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]):
        if state.api_key is None:
            return
        given = key or (token.credentials if token else None)
        if given is None or not hmac.compare_digest(given.encode(), state.api_key.encode()):
            request.scope.setdefault("wordsight", {})["error"] = "unauthorized"
            raise ApiError(401, "unauthorized", UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})

    return require_key


def app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes: settings from ``$WORDSIGHT_SERVE_SETTINGS`` (JSON)."""
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise RuntimeError(f"${SETTINGS_ENV} is not set (the `wordsight serve` command sets it)")
    return create_app(ServeSettings.from_json(text))
