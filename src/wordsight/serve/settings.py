"""What a server is allowed to accept and how it batches: plain dataclasses, JSON-able.

The defaults are the ones documented in docs/manual.md ("Serving"); every field has a
``wordsight serve`` option. A :class:`ServeSettings` travels to uvicorn worker processes as JSON in
an environment variable (see :func:`wordsight.serve.app.app_from_env`).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Per-request and per-connection limits. Uploads beyond them are refused with 413 and a JSON error."""

    max_upload_bytes: int = 20 * MB  # one image file
    max_pixels: int = 40_000_000  # width x height, read from the header before decoding
    # Each side and the aspect ratio, also from the header: preprocessing scales the shorter side up
    # to 256 px, so a 20000x1 image (139 bytes as PNG) cost 5.9 s and 2.8 GB before these limits.
    max_side: int = 20_000
    max_aspect: float = 50.0
    max_images: int = 32  # files in one request
    # A video upload, read from its container header before decoding: its duration and the frames
    # sampled from it (1 a second; also the frames of a multi-frame DICOM upload).
    max_video_seconds: float = 600.0
    max_video_frames: int = 600
    # The whole body. 32 images of 20 MiB would allow 641 MiB; photos from phones are 2-8 MB, so
    # 64 MiB holds several at once while a client cannot make the server spool more than that.
    max_request_bytes: int = 64 * MB
    timeout_s: float = 30.0  # the whole request: upload, queueing, model
    # Zero-shot: texts (class names, descriptions or names x templates) one request may embed. The
    # text encoder embedded ~60 texts/s on the loaded 2-core VM (2000 in 32 s), so 1024 stays well
    # within the timeout; the work is stopped at the timeout in any case.
    max_zero_shot_texts: int = 1024
    # Connections: a client must send a request's headers within header_timeout_s of connecting (or
    # of its previous answer), and an idle keep-alive connection is closed after keep_alive_s.
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0

    def __post_init__(self):
        for name in ("max_upload_bytes", "max_pixels", "max_side", "max_images", "max_request_bytes",
                     "max_zero_shot_texts"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, not {getattr(self, name)!r}")
        for name in ("timeout_s", "header_timeout_s", "keep_alive_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, not {getattr(self, name)!r}")
        if not self.max_aspect >= 1:
            raise ValueError(f"max_aspect must be >= 1, not {self.max_aspect!r}")

    @property
    def max_body_bytes(self) -> int:
        """A whole multipart body: ``max_request_bytes``, or less when every allowed file at its
        largest plus 1 MiB of form fields is smaller."""
        return min(self.max_request_bytes, self.max_images * self.max_upload_bytes + MB)


@dataclass(frozen=True)
class Batching:
    """Micro-batching: concurrent requests' images go through the model together.

    A batch is sent when it holds ``max_batch`` images or ``max_wait_ms`` after its first image
    arrived, whichever comes first; while the model runs, the next batch fills up.
    ``max_batch=1`` turns batching off (one image per model call).
    """

    max_batch: int = 16  # the extraction engines' own best batch on 2 CPU cores is 16-32
    max_wait_ms: float = 10.0

    def __post_init__(self):
        if int(self.max_batch) < 1:
            raise ValueError(f"max_batch must be >= 1, not {self.max_batch!r}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, not {self.max_wait_ms!r}")


@dataclass(frozen=True)
class ServeSettings:
    """Everything :func:`~wordsight.serve.create_app` needs.

    ``model_dir``: a saved :class:`~wordsight.Classifier` folder, or ``None`` for a zero-shot-only
    server. ``api_key`` (or the environment variable named by ``api_key_env``, read by each worker
    process, so that the key never travels in settings): when set, ``/v1/*`` and ``/metrics`` need
    it in the ``X-API-Key`` header (or ``Authorization: Bearer``). ``zero_shot_encoder``: the
    encoder whose images zero-shot classifies (an ImageNet-head CNN, a ``clip:`` or ``caption:``
    model; default: the model's own, else efficientnet-lite0); ``zero_shot_view``: the view it reads
    (``auto``: chosen from each request's images, as ``wordsight zeroshot`` chooses it for a folder).
    ``warm_up``: run one image through the model at start-up so that the first request does not
    pay for loading it. ``precision``: the served model's image features (``fp32``, ``bf16``,
    ``int8``, ``auto``); None keeps what the fit recorded, as ``wordsight predict`` does.
    """

    model_dir: str | None = None
    limits: Limits = field(default_factory=Limits)
    batching: Batching = field(default_factory=Batching)
    api_key: str | None = None
    api_key_env: str | None = None
    top_k: int = 5
    zero_shot_encoder: str | None = None
    zero_shot_view: str = "auto"
    text_model: str = "minilm"
    warm_up: bool = True
    precision: str | None = None

    def __post_init__(self):
        from ..estimator.precision import CONCRETE

        if self.precision not in (None, "auto", *CONCRETE):
            raise ValueError(f"precision must be one of auto, {', '.join(CONCRETE)}, not {self.precision!r}")

    def to_json(self) -> str:
        """The settings as JSON (handed to a server started in another process)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeSettings":
        """Settings from :meth:`to_json`'s text."""
        d = json.loads(text)
        d["limits"] = Limits(**d.get("limits", {}))
        d["batching"] = Batching(**d.get("batching", {}))
        return cls(**d)

    def resolved_api_key(self) -> str | None:
        """The API key given, else the one in the environment variable ``api_key_env`` (None: no key)."""
        return self.api_key or api_key_from_env(self.api_key_env)


def api_key_from_env(var: str | None) -> str | None:
    """The API key held in environment variable ``var`` (never on the command line, where
    ``ps`` would show it)."""
    if not var:
        return None
    key = os.environ.get(var, "")
    if not key.strip():
        raise ValueError(f"--api-key-env {var}: the environment variable {var} is unset or empty")
    return key.strip()
