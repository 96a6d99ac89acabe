"""What every request passes before a route: the API key, the body-size limit, the timeout, metrics.

Pure ASGI, so that a request without the key, or with a body over the limit, is answered before a
byte of its body is read.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import time

from .error_responses import ApiError, error_body
from .worker_state import ServeState

PROTECTED = ("/v1/", "/metrics")  # what needs the API key when one is set
# After an early 413 the rest of the body is read and dropped, within these bounds, before the
# answer goes out: closing a socket with unread data makes the kernel send a reset, and the client
# then lost the 413 itself ("peer closed connection", seen in 1 of 4 CI runs). nginx's lingering
# close does the same; a body beyond these bounds is not read and its client may see the reset.
LINGER_BYTES = 16 * 1024 * 1024
LINGER_S = 2.0
LINGER_IDLE_S = 0.25  # a client that sent only the headers (waiting for the answer) is not waited for


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
