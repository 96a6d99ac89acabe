"""What a model needs in order to be used correctly travels with it as data."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Callable

# Bump when decoding or preprocessing code changes what an encoder sees: cached features keyed
# with an older version are then recomputed.
PREPROCESS_VERSION = 1


@dataclass(frozen=True)
class EncoderConfig:
    name: str
    modality: str  # "image", "text" or "joint"
    dim: int
    licence: str
    weight_source: str
    # Image preprocessing: resize the shorter side to ``resize_size`` and centre-crop
    # ``input_size`` ("shorter"), or resize straight to ``input_size`` square ("exact").
    input_size: int = 0
    resize_size: int = 0
    resize_mode: str = "shorter"
    interpolation: str = "bicubic"
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    has_imagenet_head: bool = False
    install_hint: str = ""
    available: Callable[[], bool] = field(default=lambda: True, compare=False, repr=False)

    def preprocessing(self) -> dict:
        """The preprocessing fields alone (what travels with the model and keys the cache)."""
        keys = ("input_size", "resize_size", "resize_mode", "interpolation", "mean", "std")
        return {k: getattr(self, k) for k in keys}

    def to_dict(self) -> dict:
        """Every field as plain JSON-friendly values (the availability check left out)."""
        d = asdict(self)
        d.pop("available")
        return d

    @property
    def fingerprint(self) -> str:
        """Identifies (model, preprocessing, code version) in cache keys and saved models."""
        blob = json.dumps(
            {"name": self.name, "pre": self.preprocessing(), "v": PREPROCESS_VERSION}, sort_keys=True
        )
        return f"{self.name}@{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


class MissingWeightsError(RuntimeError):
    """The weights of a registered model are not installed; the message says how to get them."""
