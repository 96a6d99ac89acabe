"""A small model registry: one string names a model everywhere.

Plain names (``efficientnet-lite0``) map to entry-point functions registered with
``@register_model``; prefixed names (``hf:google/vit-base-patch16-224``, ``st:/path``) map to a
prefix handler that receives what follows the colon.
"""
from __future__ import annotations

import fnmatch
from typing import Callable

_models: dict[str, Callable] = {}
_configs: dict[str, Callable] = {}
_prefixes: dict[str, Callable] = {}
_prefix_configs: dict[str, Callable] = {}


def register_model(name: str, config: Callable):
    """Register ``fn`` as the factory of model ``name``; ``config()`` returns its EncoderConfig."""

    def wrap(fn):
        _models[name] = fn
        _configs[name] = config
        return fn

    return wrap


def register_prefix(prefix: str, config: Callable):
    """Register a factory for names ``prefix:<id or folder>``."""

    def wrap(fn):
        _prefixes[prefix] = fn
        _prefix_configs[prefix] = config
        return fn

    return wrap


def split_name(name: str) -> tuple[str | None, str]:
    if ":" in name:
        prefix, rest = name.split(":", 1)
        if prefix in _prefixes:
            return prefix, rest
    return None, name


def list_models(pattern: str = "*", modality: str | None = None) -> list[str]:
    """Registered plain model names matching a shell-style ``pattern``."""
    names = sorted(n for n in _models if fnmatch.fnmatch(n, pattern))
    if modality:
        names = [n for n in names if _configs[n]().modality == modality]
    return names


def list_prefixes() -> list[str]:
    """The registered name prefixes (``hf``, ``clip``, ``caption``, ...), sorted."""
    return sorted(_prefixes)


def _unknown(name: str) -> KeyError:
    return KeyError(
        f"unknown model {name!r}: known names are {', '.join(sorted(_models))}; "
        f"prefixes are {', '.join(p + ':' for p in sorted(_prefixes))}"
    )


def get_config(name: str):
    """The :class:`EncoderConfig` of a registered name without loading weights."""
    prefix, rest = split_name(name)
    if prefix:
        return _prefix_configs[prefix](rest)
    if name not in _configs:
        raise _unknown(name)
    return _configs[name]()


def create(name: str, **kwargs):
    """A new encoder instance for a registered name (or a ``prefix:rest`` name)."""
    prefix, rest = split_name(name)
    if prefix:
        return _prefixes[prefix](rest, **kwargs)
    if name not in _models:
        raise _unknown(name)
    return _models[name](**kwargs)
