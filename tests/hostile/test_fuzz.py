"""Bounded fuzzing (issue 14): mutated real image bytes through the decoder and the upload header
check, and mutated multipart bodies through a real server. Seeded and derandomised, so a CI run
is repeatable; a few thousand cases in well under a minute."""
from __future__ import annotations

import io

import httpx
import pytest

from .conftest import API_KEY

hypothesis = pytest.importorskip("hypothesis")
# PIL warns about the corrupt EXIF and truncated tags it skips; that is the decoder working.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _seeds() -> list[bytes]:
    """Small real images in every format the server takes (and the modes that need care)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    out = []
    for fmt, img in [("PNG", rgb), ("JPEG", rgb), ("GIF", rgb.convert("P")), ("BMP", rgb), ("WEBP", rgb),
                     ("TIFF", rgb), ("PNG", rgb.convert("RGBA")), ("PNG", rgb.convert("I;16")),
                     ("PPM", rgb)]:
        buf = io.BytesIO()
        img.save(buf, fmt)
        out.append(buf.getvalue())
    return out


SEEDS = _seeds()


@st.composite
def mutated(draw, seeds=SEEDS):
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "header"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[i] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
        elif kind == "truncate":
            del data[i:]
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[i : i + draw(st.integers(1, 16))]
        elif kind == "header" and len(data) > 24:  # sizes live in the first bytes of every format
            j = draw(st.integers(0, 23))
            data[j] = draw(st.integers(0, 255))
    return bytes(data)


FUZZ = settings(max_examples=2000, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@FUZZ
@given(mutated())
def test_decoder_fails_only_with_image_error(data):
    from wordsight.io.images import ImageError, decode_image

    try:
        img = decode_image(data, max_pixels=1_000_000, draft_size=256)
    except ImageError as e:
        assert str(e)
        return
    assert img.mode == "RGB" and 0 < img.size[0] * img.size[1] <= 1_000_000


@settings(max_examples=1000, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(mutated())
def test_upload_header_check_fails_only_with_input_errors(data):
    from wordsight.frontend import InputError, check_header
    from wordsight.serve.settings import Limits

    limits = Limits(max_pixels=1_000_000, max_side=4000)
    try:
        w, h = check_header("f", data, limits)
    except InputError as e:
        assert 400 <= e.status_code < 500 and e.code
        return
    assert 0 < w * h <= 1_000_000 and max(w, h) <= 4000


def _multipart(boundary: bytes) -> bytes:
    parts = [b"--" + boundary + b'\r\nContent-Disposition: form-data; name="top_k"\r\n\r\n0\r\n',
             b"--" + boundary + b'\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n'
             b"Content-Type: image/png\r\n\r\n" + b"not an image at all" * 3 + b"\r\n",
             b"--" + boundary + b"--\r\n"]
    return b"".join(parts)


@st.composite
def mutated_body(draw):
    boundary = b"fuzzb0undary"
    body = bytearray(_multipart(boundary))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(body) - 1))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "crlf"]))
        if kind == "flip":
            body[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            body[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del body[i : i + draw(st.integers(1, 8))]
        else:
            body[i:i] = b"\r\n"
    ctype = draw(st.sampled_from([b"multipart/form-data; boundary=fuzzb0undary", b"multipart/form-data",
                                  b"multipart/form-data; boundary=other",
                                  b'multipart/form-data; boundary="fuzzb0undary"',
                                  b"application/x-www-form-urlencoded"]))
    return bytes(body), ctype.decode()


def test_multipart_fuzz_against_a_real_server(server):
    """400 mutated bodies: every answer a JSON 4xx (a valid parse ends at top_k=0 or not an image),
    never a 500; the server answers normally afterwards."""
    seen = {}

    with httpx.Client(base_url=server.url, timeout=30, headers={"X-API-Key": API_KEY}) as c:
        @settings(max_examples=400, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(mutated_body())
        def run(case):
            body, ctype = case
            r = c.post("/v1/predict", content=body, headers={"Content-Type": ctype})
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            assert 400 <= r.status_code < 500, (r.status_code, r.text, body)
            assert set(r.json()) >= {"error", "detail"}

        run()
        assert c.get("/healthz").json()["status"] == "ok"
    assert sum(seen.values()) >= 100 and len(seen) >= 2, seen
