"""``wordsight serve`` as a child process on a free loopback port: started, waited for, stopped.

For load tests and end-to-end checks of the real command (``BackgroundServer`` runs the app in
this process instead)::

    with ServeProcess(["model/", "--max-batch", "4"]) as server:
        httpx.get(server.url + "/healthz")
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """``python -m wordsight serve ARGS --port P``; ``start()`` returns once ``/healthz`` answers
    200, and raises with the server's output if it exits or does not answer within ``start_timeout``
    seconds. Output goes to a temporary file (a pipe nobody reads could stall the server)."""

    def __init__(self, args: list[str], env: dict | None = None, start_timeout: float = 600.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args, self.env, self.start_timeout = list(args), env, start_timeout
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> "ServeProcess":
        import httpx

        self._log = tempfile.TemporaryFile(mode="w+")
        cmd = [sys.executable, "-m", "wordsight", "serve", *self.args, "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, env={**os.environ, **(self.env or {})}, stdout=self._log,
                                     stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wordsight serve exited with {self.proc.returncode}:\n{self.output()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"wordsight serve did not answer within {self.start_timeout:g} s:\n{self.output()[-2000:]}")

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "ServeProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
