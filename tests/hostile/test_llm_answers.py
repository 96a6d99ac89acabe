"""Issue 28, defect 10: the OpenAI-compatible client had no overall deadline and read answers
whole: a server sending a byte every 3 s hung ``describe-classes`` forever, a 3 GB answer raised
MemoryError. Real HTTP servers on loopback, in a thread."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from wordsight.text.llm import MAX_ANSWER_BYTES, LLMError, OpenAIChat

from .conftest import time_limit

ANSWER = json.dumps({"choices": [{"message": {"content": "a small striped cat."}}]}).encode()


class Handler(BaseHTTPRequestHandler):
    mode = "ok"

    def log_message(self, *args):
        pass

    def do_POST(self):
        try:
            self._answer()
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: what is tested
            pass

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests += 1
        if self.server.mode == "drip":  # headers at once, then one byte every 3 s
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(ANSWER)))
            self.end_headers()
            for b in ANSWER:
                if self.server.stop.wait(3):
                    return
                self.wfile.write(bytes([b]))
                self.wfile.flush()
            return
        body = ANSWER
        if self.server.mode in ("huge", "huge-chunked"):  # valid JSON, 6 MiB of it
            body = json.dumps({"choices": [{"message": {"content": "x" * (6 << 20)}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.server.mode == "huge-chunked":  # no Content-Length: the size shows only while reading
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 1 << 16):
                part = body[i:i + (1 << 16)]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def llm_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.mode, server.requests, server.stop = "ok", 0, threading.Event()
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()


def _client(server, **kw):
    return OpenAIChat(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", model="m", **kw)


def test_a_drip_fed_answer_is_cut_off_at_the_deadline(llm_server):
    llm_server.mode = "drip"
    llm = _client(llm_server, timeout=2.0, retries=1, backoff=0.01)
    start = time.monotonic()
    with time_limit(30), pytest.raises(LLMError, match=r"no answer within 2 s") as err:
        llm.generate(["describe a cat"])
    took = time.monotonic() - start
    assert 3.5 < took < 6  # two attempts of 2 s each (each byte came within urllib's 2 s read timeout)
    assert llm_server.requests == 2
    assert "after 2 attempt(s)" in str(err.value) and "\n" not in str(err.value)


def test_retries_stop_at_the_total_deadline(llm_server):
    llm_server.mode = "drip"
    llm = _client(llm_server, timeout=2.0, retries=10, backoff=0.01, total_timeout=3.0)
    start = time.monotonic()
    with time_limit(30), pytest.raises(LLMError, match=r"in at most 3 s"):
        llm.generate(["describe a cat"])
    assert time.monotonic() - start < 4
    assert llm_server.requests == 2  # 2 s, then the 1 s left


@pytest.mark.parametrize("mode", ["huge", "huge-chunked"])
def test_an_answer_over_the_cap_is_refused(llm_server, mode):
    assert MAX_ANSWER_BYTES == 4 << 20
    llm_server.mode = mode
    llm = _client(llm_server, timeout=20, retries=3, backoff=0.01)
    with time_limit(30), pytest.raises(LLMError, match=r"larger than the limit of 4,194,304"):
        llm.generate(["describe a cat"])
    assert llm_server.requests == 1  # not retried: the same answer would come again


def test_a_normal_answer_still_reads(llm_server):
    assert _client(llm_server, timeout=5).generate(["describe a cat"]) == ["a small striped cat."]
