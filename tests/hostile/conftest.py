"""Hostile inputs, built for real: files, folders, model folders and servers on loopback.

Issue 14 lists the cases; each test names its case number. Model folders are edited the way an
attacker who knows the format would: the edit is re-signed with fresh checksums (:func:`resign`),
so that only the checks beyond the checksums stand between it and the loader.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from wordsight.estimator.heads import LogisticHead

API_KEY = "hostile-key-71c2"


@contextlib.contextmanager
def time_limit(seconds: int):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""
    def fire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: it hangs")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def png(size=(32, 24), color=(200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def jpeg(arr, quality=90) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(arr)).convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def canonical(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def resign(folder: Path, edit=None, config_name: str = "config.json") -> dict:
    """Apply ``edit(config)`` and re-sign: fresh sha256 for every listed regular file inside the
    folder, and a fresh config checksum (what an attacker who knows the format does)."""
    path = folder / config_name
    config = json.loads(path.read_text())
    config.pop("config_sha256", None)
    if edit is not None:
        edit(config)
    files = config.get("files")
    if isinstance(files, dict):
        for name in list(files):
            p = folder / name
            if isinstance(name, str) and not name.startswith("/") and ".." not in name and p.is_file() \
                    and not p.is_symlink():
                files[name] = hashlib.sha256(p.read_bytes()).hexdigest()
    config["config_sha256"] = canonical(config)
    path.write_text(json.dumps(config, indent=2))
    return config


def write_head(folder: Path, change) -> None:
    """Rewrite head.safetensors with ``change(arrays)`` applied, then re-sign."""
    from safetensors.numpy import load_file, save_file

    arrays = load_file(str(folder / "head.safetensors"))
    change(arrays)
    save_file(arrays, str(folder / "head.safetensors"))
    resign(folder)


def refused_load(folder: Path, match: str, load=None, seconds: int = 120) -> str:
    """``load(folder)`` (default ``Classifier.load``) refuses the folder within ``seconds`` with a
    ``ModelFolderError`` matching ``match`` in one line; returns the message."""
    from wordsight.estimator import Classifier
    from wordsight.estimator.saved.persistence import ModelFolderError

    with time_limit(seconds), pytest.raises(ModelFolderError, match=match) as info:
        (load or Classifier.load)(folder)
    assert "\n" not in str(info.value)  # one line
    return str(info.value)


def saved_mil(folder: Path, **head) -> Path:
    """A multi-label Classifier with a mil head (``MILHead(bag=[3, 4, 5], **head)``) fitted on 30
    random rows (3 global features, a bag of 4 instances of 5) and saved to ``folder``."""
    from wordsight.estimator import Classifier
    from wordsight.estimator.heads import MILHead

    X = np.random.default_rng(0).normal(size=(30, 3 + 4 * 5))
    sets = [("a",) if i % 3 else ("a", "b") if i % 2 else ("b",) for i in range(30)]
    Classifier(task="multi-label", head=MILHead(bag=[3, 4, 5], **head)).fit(X, sets).save(folder)
    return folder


@pytest.fixture(scope="session")
def model_dir(photo_folder, tmp_path_factory) -> Path:
    """A Classifier on the four-class photo folder, saved once (JSON + safetensors)."""
    from wordsight.estimator import Classifier

    folder = tmp_path_factory.mktemp("hostile-model") / "photos-model"
    Classifier(head=LogisticHead(C=1.0)).fit(photo_folder).save(folder)
    return folder


@pytest.fixture
def model_copy(model_dir, tmp_path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(model_dir, dst)
    return dst


@pytest.fixture(scope="session")
def photos() -> dict[str, bytes]:
    from skimage import data

    return {"cat": jpeg(data.chelsea()), "rocket": jpeg(data.rocket())}


def _settings(model_dir, **limits):
    from wordsight.serve import Batching, Limits, ServeSettings

    base = dict(max_upload_bytes=300_000, max_pixels=1_000_000, max_images=4, timeout_s=60,
                max_request_bytes=2_000_000, header_timeout_s=1.5, keep_alive_s=1.0)
    base.update(limits)
    return ServeSettings(model_dir=str(model_dir) if model_dir else None, limits=Limits(**base),
                         batching=Batching(max_batch=8, max_wait_ms=10), api_key=API_KEY)


@pytest.fixture(scope="session")
def server(model_dir):
    """The trained model behind an API key and small limits (every limit is cheap to hit)."""
    from wordsight.serve import BackgroundServer

    with BackgroundServer(_settings(model_dir)) as s:
        yield s


@pytest.fixture(scope="session")
def short_server(model_dir, server):
    """Same model, a 3 s request timeout (the stalled-body case); started after ``server`` so
    that the encoders are loaded already."""
    from wordsight.serve import BackgroundServer

    with BackgroundServer(_settings(model_dir, timeout_s=3.0)) as s:
        yield s


@pytest.fixture(scope="session")
def client(server):
    import httpx

    with httpx.Client(base_url=server.url, timeout=60, headers={"X-API-Key": API_KEY}) as c:
        yield c
