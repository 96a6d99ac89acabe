"""Issue 28, defect 17, the server's part: UTF-8 file names, EXIF-turned sizes, the files-limit
message, ``/docs`` without a CDN. A real server on loopback."""
from __future__ import annotations

import io
import re

import pytest

from .conftest import jpeg

pytest.importorskip("fastapi")


def _exif_jpeg(orientation: int, size=(64, 40)) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 60, 30)).save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def test_utf8_file_names_come_back_unchanged(client):
    names = ["café-猫.png", "Ünïcödé 🐱.jpg"]
    import numpy as np

    data = jpeg(np.full((40, 64, 3), 90, np.uint8))
    r = client.post("/v1/predict", files=[("files", (n, data, "image/jpeg")) for n in names])
    assert r.status_code == 200, r.text
    assert [x["file"] for x in r.json()["results"]] == names


def test_utf8_name_in_a_raw_multipart_body(server):
    """As a browser or curl sends it: the name's UTF-8 bytes as they are in the part's header."""
    import httpx
    import numpy as np

    from .conftest import API_KEY

    data = jpeg(np.full((40, 64, 3), 90, np.uint8))
    body = (b"--b0undary\r\nContent-Disposition: form-data; name=\"files\"; filename=\"" + "chat-é.jpg".encode()
            + b"\"\r\nContent-Type: image/jpeg\r\n\r\n" + data + b"\r\n--b0undary--\r\n")
    r = httpx.post(server.url + "/v1/predict", content=body, timeout=60,
                   headers={"X-API-Key": API_KEY, "Content-Type": "multipart/form-data; boundary=b0undary"})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["file"] == "chat-é.jpg"


@pytest.mark.parametrize("orientation,shown", [(1, (64, 40)), (3, (64, 40)), (6, (40, 64)), (8, (40, 64))])
def test_exif_turned_images_report_the_size_shown(client, orientation, shown):
    from PIL import Image, ImageOps

    data = _exif_jpeg(orientation)
    assert ImageOps.exif_transpose(Image.open(io.BytesIO(data))).size == shown  # what the pipeline decodes
    r = client.post("/v1/predict", files=[("files", ("turned.jpg", data, "image/jpeg"))])
    assert r.status_code == 200, r.text
    x = r.json()["results"][0]
    assert (x["width"], x["height"]) == shown


def test_files_limit_message_states_the_real_limit(client, server):
    """max_images is 4 here: 6 files reach the multipart parser's backstop (limit + 1 files), whose
    own message said 'Maximum number of files is 5'."""
    import numpy as np

    data = jpeg(np.full((40, 64, 3), 90, np.uint8))
    r = client.post("/v1/predict", files=[("files", (f"{i}.jpg", data, "image/jpeg")) for i in range(6)])
    assert r.status_code == 413
    assert r.json() == {"error": "too_many_images", "detail": "6 or more images in one request; the limit is 4"}


def test_docs_load_nothing_from_elsewhere(client):
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "cdn" not in page.lower() and "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert "/v1/predict" in page and "/v1/explain" in page and "lime_samples" in page
    assert client.get("/openapi.json").json()["paths"]["/v1/predict"]
    assert client.get("/redoc").status_code == 404


def test_docs_page_escapes_the_schema():
    from wordsight.serve.docs_page import plain_page

    page = plain_page({"info": {"title": "<script>alert(1)</script>"},
                       "paths": {"/x": {"get": {"summary": "<img src=x onerror=alert(2)>"}}}})
    assert "<script>" not in page and "<img" not in page and "&lt;script&gt;" in page
