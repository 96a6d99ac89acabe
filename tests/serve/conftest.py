"""Servers for the serving tests: real uvicorn on free loopback ports, one model trained once.

The in-process servers (``BackgroundServer``) share this process's loaded encoders, so a second
server with other settings costs almost nothing; the CLI test starts one real subprocess.
"""
from __future__ import annotations

import io

import httpx
import numpy as np
import pytest

from wordsight.estimator.heads import LogisticHead

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

API_KEY = "test-key-3f9a"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A real headless Chromium (Debian's), driven by Playwright, for the page tests."""
    import os

    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (Debian package chromium)")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(tmp_path_factory.mktemp("chromium-profile")),
                                                       executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
                                                       viewport={"width": 1100, "height": 800})
        yield context
        context.close()


def open_page(browser, url: str):
    """A new page of ``browser`` at ``url`` and the list its script errors are collected in."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page, errors


def jpeg(arr, quality=90) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(arr)).convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="session")
def images() -> dict[str, bytes]:
    """JPEG bytes of scikit-image photos, one per class the test model knows."""
    from skimage import data

    return {"cat": jpeg(data.chelsea()), "coffee": jpeg(data.coffee()), "rocket": jpeg(data.rocket()),
            "astronaut": jpeg(data.astronaut())}


@pytest.fixture(scope="session")
def model_dir(photo_folder, tmp_path_factory) -> str:
    """A Classifier fitted on the four-class photo folder and saved (JSON + safetensors)."""
    from wordsight.estimator import Classifier

    folder = tmp_path_factory.mktemp("served-model") / "photos-model"
    Classifier(head=LogisticHead(C=1.0)).fit(photo_folder).save(folder)
    return str(folder)


@pytest.fixture(scope="session")
def server(model_dir):
    """The trained model behind small limits, so that every limit is cheap to hit."""
    from wordsight.serve import BackgroundServer, Batching, Limits, ServeSettings

    settings = ServeSettings(model_dir=model_dir,
                             limits=Limits(max_upload_bytes=300_000, max_pixels=1_000_000, max_images=4, timeout_s=120),
                             batching=Batching(max_batch=8, max_wait_ms=30))
    with BackgroundServer(settings) as s:
        yield s


@pytest.fixture(scope="session")
def client(server):
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


@pytest.fixture(scope="session")
def zs_server(server):
    """Zero-shot only (no trained model), behind an API key. Started after ``server`` so that the
    encoders are already loaded in this process."""
    from wordsight.serve import BackgroundServer, ServeSettings

    with BackgroundServer(ServeSettings(model_dir=None, api_key=API_KEY)) as s:
        yield s


@pytest.fixture(scope="session")
def api_key() -> str:
    return API_KEY


@pytest.fixture(scope="session")
def zs_client(zs_server):
    with httpx.Client(base_url=zs_server.url, timeout=120, headers={"X-API-Key": API_KEY}) as c:
        yield c

