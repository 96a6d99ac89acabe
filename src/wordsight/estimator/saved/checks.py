"""Checks on a saved Classifier's folder that a checksum cannot give: an attacker who knows the
format re-signs an edited folder with fresh checksums, so every field and array is checked for
what it must be, before it is used. (Confinement, file kinds, sizes, checksums and unlisted files:
:mod:`wordsight.storage`, for every saved object.)

- the config's fields have the types and ranges :mod:`.persistence` relies on (classes a
  non-empty, sorted list of unique names, as ``fit`` writes them; encoders named by registry name
  or hub id, never a local path; bounded parameters such as ``tta``);
- the head's arrays have the dtypes the heads write, hold no NaN or infinity, and the head gives
  one finite probability per class.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ...io.safe_files import UnsafeFileError, confined
from ...storage import MAX_CONFIG_BYTES, ModelFolderError, ModelFolderWarning

INT_ARRAYS = {"labels", "children_left", "children_right", "feature", "offsets"}
# Bounded parameters: tta runs the encoders once per view for every image (1,000,000 hung predict).
PARAM_BOUNDS = {"tta": (0, 64), "augment": (0, 256), "batch_size": (1, 4096)}

HEAD_FILE = "head.safetensors"
# Written beside a model by `fit --search` (cli/_search.py); never read when loading.
SEARCH_SIDE_FILES = frozenset({"leaderboard.csv", "search.json"})
__all__ = ["HEAD_FILE", "MAX_CONFIG_BYTES", "ModelFolderError", "ModelFolderWarning", "SEARCH_SIDE_FILES",
           "check_arrays", "check_config", "check_head"]


def _need(cond: bool, path: Path, field: str, what: str) -> None:
    if not cond:
        raise ModelFolderError(f"{path}: field {field!r} {what}")


def _local_path(ident: str) -> bool:
    parts = ident.replace("\\", "/").split("/")
    return ident.startswith(("/", ".", "~", "\\")) or ".." in parts or (len(ident) > 1 and ident[1] == ":")


def check_config(config: dict, path: Path) -> None:
    """Types and ranges of every field :func:`~.persistence.load_classifier` uses."""

    classes = config.get("classes")
    _need(isinstance(classes, list) and len(classes) >= 2, path, "classes", "must be a list of at least two names")
    _need(all(isinstance(c, str) for c in classes) or all(type(c) is int for c in classes), path, "classes",
          "must hold only strings or only integers")
    _need(len(set(classes)) == len(classes), path, "classes", "holds a name twice")
    _need(classes == sorted(classes), path, "classes",
          "is not in the sorted order fit() saves (a reordered list would mislabel every prediction)")
    encoders = config.get("encoders")
    _need(isinstance(encoders, list), path, "encoders", "must be a list")
    for e in encoders:
        _need(isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("fingerprint"), str)
              and type(e.get("dim")) is int and e["dim"] > 0, path, "encoders",
              "must hold {name, fingerprint, dim > 0} objects")
        ident = (e["name"].split(":", 2)[-1] if e["name"].startswith(("tiles:", "tilebag:"))
                 else e["name"])  # tiles:<grid>:<encoder>, tilebag:<grids>:<encoder>
        ident = ident.split(":", 1)[1] if ":" in ident else ident
        _need(not _local_path(ident), path, "encoders",
              f"names {e['name']!r}, a local path: a saved model names its encoders by registry name or hub id")
    files = config.get("files")
    _need(isinstance(files, dict) and HEAD_FILE in files, path, "files", f"must be an object listing {HEAD_FILE}")
    for name, digest in files.items():
        _need(isinstance(digest, str) and len(digest) == 64, path, "files", f"entry {name!r} has no sha256")
    head = config.get("head")
    _need(isinstance(head, dict) and isinstance(head.get("name"), str) and isinstance(head.get("info"), dict)
          and isinstance(head.get("arrays"), list) and all(isinstance(a, str) for a in head["arrays"]),
          path, "head", "must be {name, info, arrays}")
    _need(type(config.get("n_features_in")) is int and config["n_features_in"] > 0, path, "n_features_in",
          "must be an integer > 0")
    params = config.get("params")
    _need(isinstance(params, dict), path, "params", "must be an object")
    for name, (lo, hi) in PARAM_BOUNDS.items():
        v = params.get(name)
        if v is not None:
            _need(type(v) is int and lo <= v <= hi, path, f"params.{name}", f"must be an integer in {lo}..{hi}, "
                  f"not {v!r}")
    for name in ("text_weight", "paired_text_weight", "C"):
        v = params.get(name)
        values = v if isinstance(v, list) else [v]
        _need(all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x))
                  for x in values), path, f"params.{name}", "must be finite numbers")
    enc = params.get("encoders")
    _need(isinstance(enc, (str, list)) and (isinstance(enc, str) or all(isinstance(x, str) for x in enc)),
          path, "params.encoders", "must be a name or a list of names")
    prior = config.get("prior")
    if prior is not None:
        _need(isinstance(prior, dict) and isinstance(prior.get("folder"), str), path, "prior",
              "must be null or {folder, weight, temperature, ...}")
        for name in ("weight", "temperature", "head_temperature"):
            v = prior.get(name, 1.0 if name == "head_temperature" else None)
            _need(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), path,
                  f"prior.{name}", "must be a finite number")
        try:
            confined(path.parent, prior["folder"], "prior folder")
        except UnsafeFileError as e:
            raise ModelFolderError(str(e)) from None


def check_arrays(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Dtypes as the heads write them (float32/64; int64 for indices), and no NaN or infinity."""
    for name, a in arrays.items():
        if name in INT_ARRAYS:
            _need(a.dtype in (np.int64, np.int32), path, name, f"must be int64, not {a.dtype}")
        else:
            _need(a.dtype in (np.float32, np.float64), path, name, f"must be float32 or float64, not {a.dtype}")
            _need(bool(np.isfinite(a).all()), path, name, f"holds {int((~np.isfinite(a)).sum())} NaN or infinite "
                  "value(s)")


def check_head(head, classes: list, n_features: int, path: Path) -> None:
    """The head answers one finite probability per class for an input of the saved width."""
    for field, what in head.state_problems(n_features, len(classes)):  # the head's own invariants
        _need(False, path, field, what)
    try:
        P = np.asarray(head.predict_proba(np.zeros((2, n_features), np.float64)))
    except Exception as e:
        raise ModelFolderError(f"{path}: the head does not take {n_features} features ({type(e).__name__}: {e})") from None
    _need(P.shape == (2, len(classes)), path, "classes",
          f"lists {len(classes)} classes but the head answers {P.shape[1] if P.ndim == 2 else P.shape} per image")
    _need(bool(np.isfinite(P).all()), path, "head", "gives non-finite probabilities")
