"""Every error the server answers is JSON: ``{"error": code, "detail": what was wrong, ...}``."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..frontend import InputError

_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
          413: "too_large", 415: "unsupported_media_type", 422: "invalid_request", 500: "internal_error",
          503: "unavailable", 504: "timeout"}


class ApiError(HTTPException):
    """An error with a machine-readable ``code`` and the offending upload's name, if any."""

    def __init__(self, status: int, code: str, detail: str, file: str | None = None, headers=None):
        super().__init__(status, detail, headers)
        self.code, self.file = code, file


def error_body(status: int, detail, code: str | None = None, **extra) -> dict:
    body = {"error": code or _CODES.get(status, "error"), "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        code, file = getattr(exc, "code", None), getattr(exc, "file", None)
        status, detail = exc.status_code, exc.detail
        if status == 400 and "Too many files" in str(detail):  # the multipart parser's own file limit
            status, code = 413, "too_many_images"  # the parser stops at the limit + 2: say the real limit
            limit = request.app.state.wordsight.settings.limits.max_images
            detail = f"{limit + 2} or more images in one request; the limit is {limit}"
        elif status == 400 and "exceeded maximum size" in str(detail):  # a form field over max_part_size
            status, code = 413, "field_too_large"
            detail = f"a form field is too large: {detail}"
        body = error_body(status, detail, code, file=file)
        request.scope.setdefault("wordsight", {})["error"] = body["error"]  # labels the error metric
        return JSONResponse(body, status_code=status, headers=getattr(exc, "headers", None))

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError):  # the checks the CLI makes, answered as JSON
        request.scope.setdefault("wordsight", {})["error"] = exc.code
        return JSONResponse(error_body(exc.status_code, exc.detail, exc.code, file=exc.file),
                            status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        return JSONResponse(error_body(500, f"internal error: {type(exc).__name__}: {exc}", "internal_error"),
                            status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        problems = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query"))
            problems.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        request.scope.setdefault("wordsight", {})["error"] = "invalid_request"
        return JSONResponse(error_body(422, "; ".join(problems) or "invalid request", "invalid_request"),
                            status_code=422)
