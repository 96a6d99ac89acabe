"""Running the app on uvicorn: in the foreground (the CLI), or in a background thread (tests,
benchmarks, notebooks) on a free loopback port."""
from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import replace

from .app import SETTINGS_ENV, create_app
from .protocol import HEADER_TIMEOUT_ENV, GuardedH11Protocol
from .settings import ServeSettings

DEFAULT_HOST = "127.0.0.1"  # loopback unless told otherwise


def serve(settings: ServeSettings, host: str = DEFAULT_HOST, port: int = 8000, workers: int = 1,
          log_level: str = "info") -> None:
    """Serve until interrupted. With ``workers > 1`` each uvicorn worker process builds its own
    app (and loads the model once) from the settings passed in ``$WORDSIGHT_SERVE_SETTINGS``; the
    API key is never put there, only the name of the variable that holds it."""
    import uvicorn

    common = dict(host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5,
                  **connection_options(settings, by_name=True))
    if workers <= 1:
        uvicorn.run(create_app(settings), **common)
        return
    if settings.api_key and not settings.api_key_env:
        raise ValueError("several workers read the API key from an environment variable: use api_key_env")
    os.environ[SETTINGS_ENV] = replace(settings, api_key=None).to_json()
    # Loading torch and the model in a worker can keep it from answering the supervisor's ping
    # for longer than uvicorn's default 5 s on a busy machine; it would then be killed and respawned.
    uvicorn.run("wordsight.serve.app:app_from_env", factory=True, workers=workers,
                timeout_worker_healthcheck=120, **common)


def connection_options(settings: ServeSettings, by_name: bool = False) -> dict:
    """uvicorn options for the connection limits: the header timeout and JSON 400s of
    :class:`~.protocol.GuardedH11Protocol`, the keep-alive timeout, and no ``Server:`` header.
    ``by_name``: worker processes may need the class (then the timeout goes by environment)."""
    limits = settings.limits
    if by_name:
        os.environ[HEADER_TIMEOUT_ENV] = str(limits.header_timeout_s)
        protocol = GuardedH11Protocol
    else:
        protocol = GuardedH11Protocol.configured(limits.header_timeout_s)
    return dict(http=protocol, timeout_keep_alive=limits.keep_alive_s, server_header=False)


class BackgroundServer:
    """A real uvicorn server in a daemon thread, on ``127.0.0.1`` and a free port::

        with BackgroundServer(ServeSettings(model_dir="m/")) as server:
            httpx.get(server.url + "/healthz")

    The socket is bound before uvicorn starts, so there is no race for the port. ``start`` returns
    once the app has started (model loaded, warmed up) or raises what stopped it.
    """

    def __init__(self, settings: ServeSettings, host: str = DEFAULT_HOST, port: int = 0,
                 log_level: str = "warning", startup_timeout: float = 300.0):
        self.settings, self.host, self.port = settings, host, port
        self.log_level, self.startup_timeout = log_level, startup_timeout
        self.app = None
        self._server = None
        self._thread = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server (``http://host:port``)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> "BackgroundServer":
        """Bind a free loopback port, start uvicorn in a thread and wait until it answers."""
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.app = create_app(self.settings)
        config = uvicorn.Config(self.app, log_level=self.log_level, lifespan="on", timeout_graceful_shutdown=2,
                                **connection_options(self.settings))
        self._server = uvicorn.Server(config)

        def run():
            try:
                self._server.run(sockets=[sock])
            except BaseException as e:  # reported by start()
                self._error = e
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                why = "timed out" if self._thread.is_alive() else "the app's start-up failed (see the log above)"
                raise RuntimeError(f"the server did not start: {why}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Ask the server to exit and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
