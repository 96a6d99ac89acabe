"""Augmented views of training images: random resized crop, flip, colour jitter, small rotation.

A view is a PIL -> PIL function that is deterministic for a given image (its random draw is
seeded by the image's pixels, the view's index and a seed), so that its features can be cached
under a key that names the parameters (``Augment.view_key(i)``) and recomputed identically.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageEnhance

AUGMENT_CODE_VERSION = 1  # bump when the view code changes what it produces


@dataclass(frozen=True)
class Augment:
    scale: tuple[float, float] = (0.6, 1.0)   # area fraction kept by the random crop
    ratio: tuple[float, float] = (0.8, 1.25)  # aspect ratio range of the crop
    flip: float = 0.5                         # probability of a horizontal flip
    brightness: float = 0.2                   # jitter factors drawn from [1-x, 1+x]
    contrast: float = 0.2
    saturation: float = 0.2
    rotation: float = 10.0                    # degrees, uniform in [-x, x]
    seed: int = 0

    def to_dict(self) -> dict:
        """The settings as a plain dict (saved with a model, part of each view's cache key)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Augment":
        """Settings from a dict such as :meth:`to_dict` wrote (lists back to tuples); None: the defaults."""
        d = dict(d or {})
        for k in ("scale", "ratio"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

    def view_key(self, index: int) -> str:
        """The cache key suffix of augmented view ``index`` under these settings."""
        blob = json.dumps({"v": AUGMENT_CODE_VERSION, **self.to_dict()}, sort_keys=True)
        return f"aug-{hashlib.sha256(blob.encode()).hexdigest()[:10]}-{index}"

    def view(self, index: int):
        """The ``index``-th view (1, 2, ...) as a PIL -> PIL function."""

        def apply(img: Image.Image) -> Image.Image:
            return self.apply(img, index)

        return apply

    def apply(self, img: Image.Image, index: int) -> Image.Image:
        """Augmented view ``index`` of ``img``: deterministic per image content, index and seed."""
        img = img.convert("RGB")
        digest = hashlib.sha256(img.tobytes()).digest()[:8]
        rng = np.random.default_rng([int.from_bytes(digest, "little"), index, self.seed])
        w, h = img.size
        # random resized crop (torchvision's recipe: 10 tries, then the whole image)
        box = (0, 0, w, h)
        for _ in range(10):
            area = w * h * rng.uniform(*self.scale)
            r = np.exp(rng.uniform(np.log(self.ratio[0]), np.log(self.ratio[1])))
            cw, ch = int(round(np.sqrt(area * r))), int(round(np.sqrt(area / r)))
            if 0 < cw <= w and 0 < ch <= h:
                x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
                box = (x, y, x + cw, y + ch)
                break
        img = img.crop(box).resize((w, h), Image.Resampling.BICUBIC)
        if rng.uniform() < self.flip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if self.rotation:
            # fill with the border colour so that rotation adds no frame of a new colour
            arr = np.asarray(img)
            fill = tuple(int(v) for v in np.median(np.concatenate([arr[0], arr[-1]]), axis=0))
            img = img.rotate(rng.uniform(-self.rotation, self.rotation), Image.Resampling.BILINEAR, fillcolor=fill)
        for enhance, amount in ((ImageEnhance.Brightness, self.brightness),
                                (ImageEnhance.Contrast, self.contrast),
                                (ImageEnhance.Color, self.saturation)):
            if amount:
                img = enhance(img).enhance(rng.uniform(1 - amount, 1 + amount))
        return img
