"""Every server and CLI limit at exactly the limit and one past it.

The first tests call the upload checks directly (fast: the mutation run uses them); the
``test_server_*`` ones send real requests to the loopback server of ``conftest.py`` (max 4 images,
300,000 bytes per file, 1,000,000 pixels) and check that the answer comes from wordsight's own
check (its error code and message), not only from the multipart parser's.
"""
from __future__ import annotations

import asyncio
import io

import httpx
import pytest
from PIL import Image

from wordsight.frontend import InputError, check_header, display_name
from wordsight.serve.settings import MB, Limits
from wordsight.serve.uploads import read_uploads


def png(w, h) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (w, h)).save(buf, "PNG")
    return buf.getvalue()


def padded(data: bytes, size: int) -> bytes:
    """A valid image file of exactly ``size`` bytes (PNG readers ignore bytes after IEND)."""
    assert len(data) <= size
    return data + b"\0" * (size - len(data))


def refused(fn, *args):
    with pytest.raises(InputError) as e:
        fn(*args)
    return e.value


# ------------------------------------------------------------------ the checks, called directly
def test_check_header_bytes_at_the_limit_and_one_past():
    limits = Limits(max_upload_bytes=5_000)
    assert check_header("a.png", padded(png(20, 10), 5_000), limits) == (20, 10)
    e = refused(check_header, "a.png", padded(png(20, 10), 5_001), limits)
    assert (e.status_code, e.code, e.file) == (413, "upload_too_large", "a.png")
    assert e.detail == "a.png: upload is larger than the limit of 5,000 bytes per image"


def test_check_header_pixels_at_the_limit_and_one_past():
    limits = Limits(max_pixels=5_000)
    assert check_header("p.png", png(100, 50), limits) == (100, 50)
    assert check_header("p.png", png(50, 100), limits) == (50, 100)
    e = refused(check_header, "p.png", png(101, 50), limits)
    assert (e.status_code, e.code) == (413, "too_many_pixels")
    assert e.detail == "p.png: 101x50 = 5,050 pixels exceeds the limit of 5,000 pixels"


def test_check_header_refuses_empty_and_non_images_with_their_own_codes():
    limits = Limits()
    e = refused(check_header, "e.jpg", b"", limits)
    assert (e.status_code, e.code, e.detail) == (422, "empty_file", "e.jpg: empty file (0 bytes)")
    e = refused(check_header, "n.txt", b"plain words", limits)
    assert (e.status_code, e.code) == (415, "not_an_image")
    assert e.detail == ("n.txt: not a recognised image format (expected JPEG, PNG, WebP, GIF, BMP, TIFF, a video "
                        "(MP4, WebM, MKV, MOV, AVI) or DICOM)")
    buf = io.BytesIO()
    Image.new("RGB", (3, 5)).save(buf, "WEBP")
    e = refused(check_header, "w.webp", buf.getvalue()[:30], limits)  # identified as WebP, header cut short
    assert (e.status_code, e.code) == (422, "corrupt_image")
    assert e.detail.startswith("w.webp: cannot read the image header: ")
    assert check_header("one.png", png(1, 1), Limits(max_pixels=1)) == (1, 1)  # the smallest limit


def png_header_claiming(w, h) -> bytes:
    """A 1 x 1 PNG whose header is rewritten to say w x h (CRC fixed): readers see the size only."""
    import struct
    import zlib

    data = bytearray(png(1, 1))
    ihdr = bytes(data[12:16]) + struct.pack(">II", w, h) + bytes(data[24:29])
    data[16:24] = ihdr[4:12]
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    return bytes(data)


def test_check_header_refuses_a_decompression_bomb_from_its_header():
    """A 20,000 x 20,000 header (400 Mpx, past PIL's own bomb limit): 413 before any decoding."""
    e = refused(check_header, "bomb.png", png_header_claiming(20_000, 20_000), Limits(max_pixels=10**9))
    assert (e.status_code, e.code, e.file) == (413, "too_many_pixels", "bomb.png")
    e = refused(check_header, "big.png", png_header_claiming(3_000, 3_000), Limits(max_pixels=8_999_999))
    assert (e.status_code, e.code) == (413, "too_many_pixels") and "9,000,000 pixels" in e.detail


def uploads(*datas):
    from starlette.datastructures import UploadFile

    return [UploadFile(io.BytesIO(d), filename=f"dir/{i}.png") for i, d in enumerate(datas)]


def test_read_uploads_at_the_image_limit_and_one_past():
    limits = Limits(max_images=3)
    got = asyncio.run(read_uploads(uploads(*[png(4, 3)] * 3), limits))
    assert [(u.name, u.width, u.height) for u in got] == [("0.png", 4, 3), ("1.png", 4, 3), ("2.png", 4, 3)]
    assert len({u.sample.path for u in got}) == 3 and all(u.sample.data == png(4, 3) for u in got)
    again = asyncio.run(read_uploads(uploads(png(4, 3)), limits))
    assert again[0].sample.path not in {u.sample.path for u in got}  # unique across requests
    with pytest.raises(InputError) as e:
        asyncio.run(read_uploads(uploads(*[png(4, 3)] * 4), limits))
    assert (e.value.status_code, e.value.code, e.value.detail) == (
        413, "too_many_images", "4 images in one request; the limit is 3")
    with pytest.raises(InputError) as e:
        asyncio.run(read_uploads([], limits))
    assert (e.value.status_code, e.value.code) == (422, "no_images")


def test_read_uploads_reads_one_byte_past_the_size_limit():
    """A file one byte too large must not be cut to the limit and accepted."""
    limits = Limits(max_upload_bytes=2_000)
    assert len(asyncio.run(read_uploads(uploads(padded(png(8, 8), 2_000)), limits))) == 1
    with pytest.raises(InputError) as e:
        asyncio.run(read_uploads(uploads(padded(png(8, 8), 2_001)), limits))
    assert (e.value.code, e.value.file) == ("upload_too_large", "0.png")


def test_display_name_keeps_the_last_part_only():
    assert display_name("C:\\Users\\me\\cat.jpg", 0) == "cat.jpg"
    assert display_name("../../etc/passwd", 0) == "passwd"
    assert display_name(None, 2) == "image 3" and display_name("  ", 0) == "image 1"
    assert display_name("x" * 300, 0) == "x" * 200


def test_settings_limits_at_their_lowest_allowed_values():
    assert Limits(max_upload_bytes=1, max_pixels=1, max_images=1, timeout_s=0.001).max_images == 1
    for name in ("max_upload_bytes", "max_pixels", "max_images"):
        with pytest.raises(ValueError, match=f"{name} must be >= 1, not 0"):
            Limits(**{name: 0})
    with pytest.raises(ValueError, match="timeout_s must be > 0, not 0"):
        Limits(timeout_s=0)
    assert Limits(max_upload_bytes=1000, max_images=3).max_body_bytes == 3 * 1000 + MB


def test_settings_from_the_serve_cli_options():
    from wordsight.cli import build_parser
    from wordsight.cli.serve import settings_from_args

    args = build_parser().parse_args(["serve", "--max-upload-mb", "0.5", "--max-megapixels", "2.5",
                                      "--max-images", "1", "--timeout", "7"])
    s = settings_from_args(args)
    assert s.limits == Limits(max_upload_bytes=MB // 2, max_pixels=2_500_000, max_images=1, timeout_s=7.0)
    bad = build_parser().parse_args(["serve", "--max-images", "0"])
    with pytest.raises(ValueError, match="max_images must be >= 1, not 0"):
        settings_from_args(bad)


def test_settings_cli_limit_one_past_exits_with_a_one_line_error(capsys):
    from wordsight.cli import main

    assert main(["serve", "--max-images", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["wordsight serve: error: max_images must be >= 1, not 0"]


# ------------------------------------------------------------------ over real HTTP
def up(*pairs):
    return [("files", (name, data, "application/octet-stream")) for name, data in pairs]


def test_server_accepts_exactly_max_images_and_its_own_check_refuses_one_more(client, images):
    r = client.post("/v1/predict", files=up(*[(f"{i}.jpg", images["cat"]) for i in range(4)]))
    assert r.status_code == 200, r.text
    assert [x["file"] for x in r.json()["results"]] == ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]
    r = client.post("/v1/predict", files=up(*[(f"{i}.jpg", images["cat"]) for i in range(5)]))
    assert r.status_code == 413
    assert r.json() == {"error": "too_many_images", "detail": "5 images in one request; the limit is 4"}
    r = client.post("/v1/predict", files=up(*[(f"{i}.jpg", images["cat"]) for i in range(6)]))
    assert r.status_code == 413 and r.json()["error"] == "too_many_images"  # the parser's backstop


def test_server_upload_bytes_at_the_limit_and_one_past(client):
    small = png(64, 64)
    r = client.post("/v1/predict", files=up(("exact.png", padded(small, 300_000))))
    assert r.status_code == 200, r.text
    r = client.post("/v1/predict", files=up(("over.png", padded(small, 300_001))))
    assert r.status_code == 413
    assert r.json() == {"error": "upload_too_large", "file": "over.png",
                        "detail": "over.png: upload is larger than the limit of 300,000 bytes per image"}


def test_server_pixels_at_the_limit_and_one_past(client):
    assert client.post("/v1/predict", files=up(("square.png", png(1000, 1000)))).status_code == 200
    r = client.post("/v1/predict", files=up(("tall.png", png(1000, 1001))))
    assert r.status_code == 413
    assert r.json()["error"] == "too_many_pixels" and r.json()["file"] == "tall.png"
    assert "1000x1001 = 1,001,000 pixels exceeds the limit of 1,000,000" in r.json()["detail"]


def multipart_of_size(total: int) -> tuple[bytes, str]:
    """A one-file multipart body of exactly ``total`` bytes."""
    head = (b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"files\"; filename=\"pad.png\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n")
    tail = b"\r\n--BOUNDARY--\r\n"
    body = head + padded(png(8, 8), total - len(head) - len(tail)) + tail
    assert len(body) == total
    return body, "multipart/form-data; boundary=BOUNDARY"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "streamed"])
def test_server_body_size_at_the_limit_and_one_past(server, chunked):
    """The whole-body limit (4 x 300,000 + 1 MiB): checked on Content-Length and again while a
    chunked body streams in. At the limit the body gets through to the per-file check."""
    limit = Limits(max_upload_bytes=300_000, max_images=4).max_body_bytes

    def post(total):
        body, ctype = multipart_of_size(total)
        content = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
        return httpx.post(server.url + "/v1/predict", content=content, headers={"content-type": ctype}, timeout=120)

    at = post(limit)
    assert at.status_code == 413 and at.json()["error"] == "upload_too_large" and at.json()["file"] == "pad.png"
    over = post(limit + 1)
    assert over.status_code == 413 and over.json()["error"] == "request_too_large"
    assert over.json()["detail"].startswith(f"request body larger than {limit:,} bytes")


@pytest.fixture(scope="module")
def broken_server(model_dir):
    """A server whose model raises on every prediction. A saved folder that cannot predict is now
    refused at load (tests/hostile), so the failure is put into the loaded model's head."""
    from wordsight.serve import BackgroundServer, ServeSettings

    with BackgroundServer(ServeSettings(model_dir=model_dir, warm_up=False)) as s:
        head = s.app.state.wordsight.predictor.classifier.head_

        def broken(X):
            raise ValueError("matmul: the head broke")

        head.logits = broken
        yield s


def test_server_answers_json_500_when_the_model_raises(broken_server, images):
    r = httpx.post(broken_server.url + "/v1/predict", files=up(("cat.jpg", images["cat"])), timeout=120)
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "internal_error" and body["detail"].startswith("internal error: ValueError: ")
    assert httpx.get(broken_server.url + "/healthz").json()["status"] == "ok"  # still serving
    metrics = httpx.get(broken_server.url + "/metrics").text
    assert 'wordsight_requests_total{route="/v1/predict",method="POST",status="500"} 1' in metrics


def test_drain_after_an_early_413_is_bounded():
    """The lingering read before an early 413: to the end of the body, but never more than its byte
    budget, and not waiting for a client that stopped sending."""
    import asyncio

    from wordsight.serve import guard

    def receiver(chunks, pause_after=None):
        sent = iter(range(chunks))

        async def receive():
            i = next(sent)
            if i == pause_after:
                await asyncio.sleep(guard.LINGER_IDLE_S * 4)
            return {"type": "http.request", "body": b"x" * 1000, "more_body": i < chunks - 1}

        return receive

    assert asyncio.run(guard._drain(receiver(10), 1 << 20)) == 10_000  # to the end
    assert asyncio.run(guard._drain(receiver(10), 3_500)) == 4_000  # the budget, in whole messages
    assert asyncio.run(guard._drain(receiver(10, pause_after=3), 1 << 20)) == 3_000  # idle: stop


def test_serve_precision_reaches_the_served_model(model_dir):
    from wordsight.cli import build_parser
    from wordsight.cli.serve import settings_from_args
    from wordsight.serve import ServeSettings
    from wordsight.serve.predictor import Predictor

    fitted = Predictor(ServeSettings(model_dir=model_dir, warm_up=False)).classifier.precision
    args = build_parser().parse_args(["serve", model_dir, "--precision", "bf16"])
    settings = settings_from_args(args)
    assert settings.precision == "bf16" and ServeSettings.from_json(settings.to_json()) == settings
    assert Predictor(settings).classifier.precision == "bf16"
    assert settings_from_args(build_parser().parse_args(["serve", model_dir])).precision is None
    assert fitted != "bf16"  # without the option the model keeps what the fit set
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, int8, not 'fp16'"):
        ServeSettings(precision="fp16")
