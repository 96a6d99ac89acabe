"""uvicorn's h11 protocol with the two things it lacks for a server on an open network.

- A header timeout: uvicorn only times out idle keep-alive connections, so a client that sends half
  a request header and stops held its connection (and a file descriptor) for as long as it liked.
  Here a request's headers must arrive within ``header_timeout`` of the connection opening or of
  the previous answer; otherwise the connection gets a JSON 408 and is closed.
- JSON for malformed HTTP: uvicorn answers a request h11 cannot parse (``Content-Length: abc``)
  with a plain-text 400; here it is the app's usual ``{"error": ..., "detail": ...}``.

Used by :func:`wordsight.serve.server.serve` and :class:`~wordsight.serve.server.BackgroundServer`
whatever HTTP implementation uvicorn would otherwise pick (the bodies are the app's either way).
"""
from __future__ import annotations

import json
import os

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT = 10.0
# ``wordsight serve --workers N`` hands the protocol class to worker processes by name, so a
# configured subclass cannot travel; the timeout does, in this environment variable.
HEADER_TIMEOUT_ENV = "WORDSIGHT_HEADER_TIMEOUT"


def _raw_json_response(status: int, reason: str, code: str, detail: str) -> bytes:
    body = json.dumps({"error": code, "detail": detail}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode()
    return head + body


class GuardedH11Protocol(H11Protocol):
    """:class:`H11Protocol` with a header timeout and JSON 400s (see the module docstring)."""

    header_timeout: float | None = None  # set per server by configured(), else $WORDSIGHT_HEADER_TIMEOUT

    @classmethod
    def configured(cls, header_timeout: float) -> type:
        """A subclass with its own header timeout (uvicorn takes a protocol class, not an instance)."""
        return type(cls.__name__, (cls,), {"header_timeout": float(header_timeout), "__module__": cls.__module__})

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if self.header_timeout is None:
            try:
                self.header_timeout = float(os.environ.get(HEADER_TIMEOUT_ENV, DEFAULT_HEADER_TIMEOUT))
            except ValueError:
                self.header_timeout = DEFAULT_HEADER_TIMEOUT
        self._header_timer = None
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _waiting_for_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._waiting_for_headers():
            return
        if self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]:
            self.transport.close()  # nothing of a request arrived: an idle connection, closed quietly
            return
        self.transport.write(_raw_json_response(
            408, "Request Timeout", "header_timeout",
            f"the request headers did not arrive within {self.header_timeout:g} s"))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_timer is not None and not self._waiting_for_headers():
            self._cancel_header_timer()  # headers are in: the request timeout takes over

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self._cancel_header_timer()
        detail = f"malformed HTTP request: {msg}"
        try:
            output = self.conn.send(h11.Response(status_code=400, reason=b"Bad Request", headers=[
                (b"content-type", b"application/json"), (b"connection", b"close")]))
            body = json.dumps({"error": "bad_request", "detail": detail}).encode()
            output += self.conn.send(h11.Data(data=body)) + self.conn.send(h11.EndOfMessage())
            self.transport.write(output)
        except h11.LocalProtocolError:  # h11 cannot frame a response now: write it by hand
            self.transport.write(_raw_json_response(400, "Bad Request", "bad_request", detail))
        self.transport.close()
