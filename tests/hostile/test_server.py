"""Issue 14, server cases 1-6, and what already held (bombs, oversize, too many files, bad keys,
a stalled body, no file read on a client's say-so). Real uvicorn servers on loopback."""
from __future__ import annotations

import io
import json
import socket
import threading
import time

import numpy as np
import pytest

from .conftest import API_KEY, png

pytest.importorskip("fastapi")


def _post(client, route, files, **data):
    return client.post(route, files=[("files", f) for f in files], data=data)


def _raw(server, payload: bytes, read_timeout: float = 10.0) -> tuple[bytes, float]:
    """Send ``payload`` on a fresh connection; (everything the server sent until it closed, seconds)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=read_timeout) as sock:
        sock.sendall(payload)
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except (ConnectionResetError, socket.timeout):
            pass
    return b"".join(chunks), time.monotonic() - start


def _json_body(raw: bytes) -> dict:
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])


# ---------------------------------------------------------------- case 1: elongated images
@pytest.mark.parametrize("size", [(20000, 1), (1, 20000), (600, 11)])
def test_case1_elongated_image_refused_from_its_header(client, size):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size).save(buf, "PNG")
    assert len(buf.getvalue()) < 2000  # tiny on the wire
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; the server runs in this process
    start = time.monotonic()
    r = _post(client, "/v1/predict", [("long.png", buf.getvalue(), "image/png")])
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200_000  # it grew by 2.8 GB before
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "too_elongated" and r.json()["file"] == "long.png"
    assert "aspect ratio" in r.json()["detail"] and "50:1" in r.json()["detail"]
    assert time.monotonic() - start < 5  # refused before decoding (it took 5.9 s and 2.8 GB)


def test_case1_side_limit_and_aspect_limit_values():
    """The limits themselves: 50:1 passes, 51:1 does not; a side over max_side is refused."""
    from PIL import Image

    from wordsight.frontend import InputError, check_header
    from wordsight.serve.settings import Limits

    def header(size):
        buf = io.BytesIO()
        Image.new("L", size).save(buf, "PNG")
        return buf.getvalue()

    limits = Limits(max_side=1000)
    assert check_header("ok.png", header((500, 10)), limits) == (500, 10)
    with pytest.raises(InputError, match="aspect ratio"):
        check_header("x.png", header((510, 10)), limits)
    with pytest.raises(InputError, match="side longer than the limit of 1,000"):
        check_header("x.png", header((1001, 100)), limits)


def test_held_bomb_oversize_and_too_many_files(client):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (2000, 1000)).save(buf, "PNG")  # 2 MP > 1 MP limit, a few kB of PNG
    r = _post(client, "/v1/predict", [("bomb.png", buf.getvalue(), "image/png")])
    assert r.status_code == 413 and r.json()["error"] == "too_many_pixels"
    r = _post(client, "/v1/predict", [("big.png", b"\x89PNG" + b"\0" * 400_000, "image/png")])
    assert r.status_code == 413 and r.json()["error"] == "upload_too_large"
    r = _post(client, "/v1/predict", [(f"{i}.png", png(), "image/png") for i in range(5)])
    assert r.status_code == 413 and r.json()["error"] == "too_many_images"
    for route in ("/v1/describe", "/v1/predict"):  # every route that takes images holds the same limits
        r = _post(client, route, [("bomb.png", buf.getvalue(), "image/png")])
        assert r.status_code == 413 and r.json()["error"] == "too_many_pixels", route
        r = _post(client, route, [(f"{i}.png", png(), "image/png") for i in range(5)])
        assert r.status_code == 413 and r.json()["error"] == "too_many_images", route
        r = _post(client, route, [("/etc/passwd", b"root:x:0:0", "image/png")])
        assert r.status_code == 415 and r.json()["file"] == "passwd", route


def test_held_no_local_file_is_read(client):
    r = _post(client, "/v1/predict", [("/etc/passwd", b"root:x:0:0", "image/png")])
    assert r.status_code == 415 and r.json()["file"] == "passwd"  # the uploaded bytes, not the file


# ---------------------------------------------------------------- case 2: nested JSON
@pytest.mark.parametrize("field", ["classes", "descriptions"])
def test_case2_deeply_nested_json_is_a_422(client, photos, field):
    deep = "[" * 1000 + "]" * 1000
    data = {"classes": deep} if field == "classes" else {"classes": "cat,dog", "descriptions": '{"cat": ' + deep + "}"}
    r = _post(client, "/v1/zeroshot", [("cat.jpg", photos["cat"], "image/jpeg")], **data)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == f"invalid_{field}" and "nested deeper" in r.json()["detail"]


def test_case2_json_depth_counts_brackets_outside_strings():
    from wordsight.frontend._json import json_depth

    assert json_depth('["a", "b"]') == 1
    assert json_depth('{"c": ["[[[[", "x\\"]"]}') == 2
    assert json_depth("[" * 50 + "]" * 50) == 50


# ---------------------------------------------------------------- case 3: zero-shot work is bounded
def test_case3_huge_description_lists_refused_at_once(client, photos):
    img = [("cat.jpg", photos["cat"], "image/jpeg")]
    issue = json.dumps({"cat": [f"a short text {i}" for i in range(20000)]})  # the issue's ~430 kB field
    start = time.monotonic()
    r = _post(client, "/v1/zeroshot", img, classes="cat,dog", descriptions=issue)
    assert r.status_code == 413 and r.json()["error"] == "field_too_large"
    r = _post(client, "/v1/zeroshot", img, classes="cat,dog",
              descriptions=json.dumps({"cat": [f"text {i}" for i in range(5000)]}))  # 70 kB: under the field cap
    assert r.status_code == 422 and r.json()["error"] == "invalid_descriptions"
    assert r.json()["detail"] == "descriptions: 'cat' has 5,000 descriptions, more than the limit of 256"
    assert time.monotonic() - start < 5
    assert client.get("/healthz").status_code == 200  # and nothing was left running


def test_case3_field_and_text_caps(client, photos):
    img = [("cat.jpg", photos["cat"], "image/jpeg")]
    # a request's descriptions meet the checks of a descriptions file (wordsight.frontend.description_input)
    r = _post(client, "/v1/zeroshot", img, classes="cat,dog", descriptions=json.dumps({"cat": "x" * 1001}))
    assert r.status_code == 422 and r.json()["detail"] == ("descriptions: a description of 'cat' has 1,001 "
                                                           "characters, more than the limit of 1000")
    names = ",".join(f"class{i}" for i in range(200))  # 200 x 8 templates = 1600 texts > 1024
    r = _post(client, "/v1/zeroshot", img, classes=names, method="templates")
    assert r.status_code == 422 and r.json()["error"] == "too_many_texts" and "1,600 texts" in r.json()["detail"]
    r = _post(client, "/v1/zeroshot", img, classes="a," * 200_000)  # 400 kB field > 256 KiB part cap
    assert r.status_code == 413, r.text


def test_case3_text_embedding_stops_at_the_deadline():
    from wordsight.text._text import CHUNK, TextDeadlineExceeded, deadline, embed_texts

    texts = [f"hostile text number {i}" for i in range(CHUNK * 3)]
    start = time.monotonic()
    with deadline(0.0), pytest.raises(TextDeadlineExceeded):
        embed_texts(texts, cache=False)
    assert time.monotonic() - start < 5  # stopped before the first chunk, not after 768 texts


def test_case3_text_cache_on_disk_and_in_memory_is_bounded(tmp_path, monkeypatch):
    from wordsight.text import _text

    class Fake:  # a named text model whose vectors are known: 4 floats per text
        class config:
            name = "fake-hostile"

        def encode(self, texts):
            return np.ones((len(texts), 4), np.float32)

    monkeypatch.setenv("WORDSIGHT_CACHE", str(tmp_path))
    monkeypatch.setenv("WORDSIGHT_TEXT_CACHE_MB", str(3000 / (1 << 20)))  # 3000 bytes on disk
    monkeypatch.setattr(_text, "MEMORY_CACHE_BYTES", 2 * 50 * 4 * 4)  # two lists of 50 texts
    monkeypatch.setattr(_text, "_memory", type(_text._memory)())
    for k in range(6):
        _text.embed_texts([f"list {k} text {i}" for i in range(50)], Fake())  # 800 bytes + header each
        time.sleep(0.01)
    files = list((tmp_path / "text-embeddings").glob("*.npy"))
    assert 1 <= len(files) <= 3 and sum(f.stat().st_size for f in files) <= 3000
    assert len(_text._memory) == 2  # the least recently used went first


# ---------------------------------------------------------------- case 4: key before body, body cap
def test_case4_missing_key_refused_before_the_body(server):
    head = (f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {200 << 20}\r\n\r\n").encode()
    raw, seconds = _raw(server, head + b"--b\r\n" + b"x" * 1000)  # 1 kB of a 200 MB body
    assert raw.startswith(b"HTTP/1.1 401"), raw[:200]
    assert b"connection: close" in raw.lower()
    assert _json_body(raw)["error"] == "unauthorized"
    assert seconds < 5


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"},
                                     {"X-API-Key": API_KEY + "x"}, {"Authorization": "Basic " + API_KEY}])
def test_held_every_bad_key_is_a_401(server, headers):
    import httpx

    r = httpx.get(server.url + "/v1/model", headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert httpx.get(server.url + "/v1/model", headers={"Authorization": "Bearer " + API_KEY}).status_code == 200


def test_case4_body_cap_near_the_real_need(server):
    from wordsight.serve.settings import Limits

    assert Limits().max_body_bytes == 64 << 20  # not 32 x 20 MiB + 1 MiB = 641 MiB
    head = (f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 2000001\r\n\r\n").encode()
    raw, seconds = _raw(server, head)
    assert raw.startswith(b"HTTP/1.1 413") and _json_body(raw)["error"] == "request_too_large"
    assert seconds < 5


# ---------------------------------------------------------------- case 5: header and keep-alive timeouts
def test_case5_half_a_header_is_cut_off(server):
    raw, seconds = _raw(server, b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Le", read_timeout=20)
    assert raw.startswith(b"HTTP/1.1 408") and _json_body(raw)["error"] == "header_timeout"
    assert 1.0 < seconds < 8  # header_timeout_s=1.5 (it stayed connected for 80 s and more)


def test_case5_idle_connections_are_closed(server):
    raw, seconds = _raw(server, b"", read_timeout=20)  # connect, send nothing
    assert raw == b"" and seconds < 8
    raw, seconds = _raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", read_timeout=20)  # then keep-alive
    assert raw.startswith(b"HTTP/1.1 200") and seconds < 8


# ---------------------------------------------------------------- case 6: malformed HTTP, HEAD
def test_case6_malformed_http_gets_the_json_error_shape(server):
    raw, _ = _raw(server, b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400")
    assert b"application/json" in raw
    assert _json_body(raw)["error"] == "bad_request"


def test_case6_head_requests(server):
    import httpx

    assert httpx.head(server.url + "/").status_code == 200
    assert httpx.head(server.url + "/healthz").status_code == 200


# ---------------------------------------------------------------- held: a stalled body times out alone
def test_held_stalled_body_gets_504_while_others_are_served(short_server, photos):
    import httpx

    head = (f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n").encode()
    result = {}
    t = threading.Thread(target=lambda: result.update(raw=_raw(short_server, head, read_timeout=30)))
    t.start()
    time.sleep(0.5)
    r = httpx.post(short_server.url + "/v1/predict", headers={"X-API-Key": API_KEY}, timeout=30,
                   files=[("files", ("cat.jpg", photos["cat"], "image/jpeg"))])
    assert r.status_code in (200, 504)  # served, or timed out on a loaded machine; never stuck behind it
    t.join(30)
    raw, seconds = result["raw"]
    assert raw.startswith(b"HTTP/1.1 504") and _json_body(raw)["error"] == "timeout"
    assert 2.5 < seconds < 15


def test_case5_protocol_and_timeouts_travel_to_worker_processes(monkeypatch):
    """``--workers N`` hands uvicorn the protocol class by name (it is pickled to each worker);
    the header timeout goes by environment variable."""
    import os
    import pickle

    from wordsight.serve import Limits, ServeSettings
    from wordsight.serve.protocol import HEADER_TIMEOUT_ENV, GuardedH11Protocol
    from wordsight.serve.server import connection_options

    monkeypatch.delenv(HEADER_TIMEOUT_ENV, raising=False)
    opts = connection_options(ServeSettings(limits=Limits(header_timeout_s=7, keep_alive_s=3)), by_name=True)
    assert opts["http"] is GuardedH11Protocol and pickle.loads(pickle.dumps(opts["http"])) is GuardedH11Protocol
    assert float(os.environ[HEADER_TIMEOUT_ENV]) == 7.0 and opts["timeout_keep_alive"] == 3
    assert connection_options(ServeSettings(limits=Limits(header_timeout_s=2)))["http"].header_timeout == 2.0


# ---------------------------------------------------------------- held: awkward but valid images, a storm
def _awkward_images() -> list[tuple[str, bytes]]:
    from PIL import Image

    rng = np.random.default_rng(1)
    base = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    out = []

    def save(name, img, fmt, **kw):
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        out.append((name, buf.getvalue()))

    save("16bit.png", Image.fromarray((rng.integers(0, 65535, (48, 64))).astype(np.uint16)), "PNG")
    save("cmyk.jpg", base.convert("CMYK"), "JPEG")
    save("palette-alpha.png", base.convert("P"), "PNG", transparency=0)
    save("rgba.png", base.convert("RGBA"), "PNG")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    save("exif-rotated.jpg", base, "JPEG", exif=exif)
    return out


def test_held_awkward_modes_are_classified(client):
    images = _awkward_images()
    r = _post(client, "/v1/predict", [(n, b, "application/octet-stream") for n, b in images[:4]])
    assert r.status_code == 200, r.text
    r2 = _post(client, "/v1/predict", [(n, b, "application/octet-stream") for n, b in images[4:]])
    assert r2.status_code == 200 and r2.json()["results"][0]["height"] == 64  # as shown: after the EXIF rotation (issue 28)
    assert [x["file"] for x in r.json()["results"]] == [n for n, _ in images[:4]]


def test_held_a_storm_leaves_answers_unchanged(client, photos):
    from concurrent.futures import ThreadPoolExecutor

    def ask():
        return _post(client, "/v1/predict", [("cat.jpg", photos["cat"], "image/jpeg")]).json()

    before = ask()
    hostile = [[("long.png", png((5000, 10)), "image/png")],
               [("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 50, "image/png")],
               [("e.png", b"", "image/png")], [("cat.jpg", photos["cat"], "image/jpeg")]]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: _post(client, "/v1/predict", hostile[i % 4]).status_code, range(24)))
    assert 500 not in codes and codes.count(200) == 6
    assert ask() == before  # bit-identical probabilities after the storm
