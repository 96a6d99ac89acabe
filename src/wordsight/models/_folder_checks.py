"""Checks on a saved-model folder that a checksum cannot give: an attacker who knows the format
re-signs an edited folder with fresh checksums, so every field, file and array is checked for
what it must be, before it is used.

- every file named in ``config.json`` is a relative name inside the folder (no ``..``, no
  absolute path, no link out of it) and a regular file under a size cap; ``config.json`` too;
- the config's fields have the types and ranges :mod:`.persistence` relies on (classes a
  non-empty, sorted list of unique names, as ``fit`` writes them; encoders named by registry name
  or hub id, never a local path; bounded parameters such as ``tta``);
- the head's arrays have the dtypes the heads write, hold no NaN or infinity, and the head gives
  one finite probability per class;
- files in the folder that the config does not list (a stray ``model.pkl``) are reported: they are
  never loaded.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np

from .._util.errors import WordsightError
from ..io.safe_files import UnsafeFileError, check_regular, confined, read_regular

MAX_CONFIG_BYTES = 8 << 20  # a config with a 1000-class prior is ~100 kB
MAX_WEIGHT_BYTES = 2 << 30  # one weight file (an MLP head on 70k images is ~10 MB)
MAX_JSON_DEPTH = 32
MAX_EXTRA_REPORTED = 20
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".npy", ".npz", ".ckpt"}
INT_ARRAYS = {"labels", "children_left", "children_right", "feature", "offsets"}
# Bounded parameters: tta runs the encoders once per view for every image (1,000,000 hung predict).
PARAM_BOUNDS = {"tta": (0, 64), "augment": (0, 256), "batch_size": (1, 4096)}

HEAD_FILE = "head.safetensors"
# Written beside a model by `fit --search` (cli/_search.py); never read when loading.
SEARCH_SIDE_FILES = {"leaderboard.csv", "search.json"}


class ModelFolderError(WordsightError):
    """A saved-model folder is missing, damaged, tampered with or incompatible."""



def _error(msg: str) -> Exception:

    return ModelFolderError(msg)


def read_config_bytes(path: Path) -> dict:
    """``config.json`` parsed: a regular file of at most :data:`MAX_CONFIG_BYTES`, JSON of bounded depth."""
    try:
        data = read_regular(path, MAX_CONFIG_BYTES)
    except UnsafeFileError as e:
        raise _error(str(e)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _error(f"{path}: not valid JSON (not UTF-8: {e.reason}); the file is damaged") from None
    depth = deepest = 0
    for ch in text:  # strings could hide brackets, which only makes this bound stricter
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise _error(f"{path}: JSON nested {deepest} deep (a saved model is at most {MAX_JSON_DEPTH})")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise _error(f"{path}: not valid JSON ({e}); the file is damaged or truncated") from None


def _need(cond: bool, path: Path, field: str, what: str) -> None:
    if not cond:
        raise _error(f"{path}: field {field!r} {what}")


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
        ident = e["name"].split(":", 1)[1] if ":" in e["name"] else e["name"]
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
            raise _error(str(e)) from None


def checked_files(folder: Path, files: dict) -> dict[str, Path]:
    """Each listed file's path, confined to ``folder``, a regular file of at most :data:`MAX_WEIGHT_BYTES`."""
    out = {}
    for name in files:
        try:
            p = confined(folder, name, "listed file")
            check_regular(p, MAX_WEIGHT_BYTES)
        except UnsafeFileError as e:
            raise _error(f"{e} (listed in config.json)") from None
        out[name] = p
    return out


def read_weights(path: Path) -> bytes:
    try:
        return read_regular(path, MAX_WEIGHT_BYTES)
    except UnsafeFileError as e:
        raise _error(str(e)) from None


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
        raise _error(f"{path}: the head does not take {n_features} features ({type(e).__name__}: {e})") from None
    _need(P.shape == (2, len(classes)), path, "classes",
          f"lists {len(classes)} classes but the head answers {P.shape[1] if P.ndim == 2 else P.shape} per image")
    _need(bool(np.isfinite(P).all()), path, "head", "gives non-finite probabilities")


def report_unlisted(folder: Path, files: dict) -> list[str]:
    """Files in ``folder`` that ``config.json`` does not list: warned about (pickles by name), never read."""
    listed = {Path(n).as_posix() for n in files} | {"config.json"} | SEARCH_SIDE_FILES
    extra = []
    for p in sorted(folder.rglob("*")):
        if len(extra) >= MAX_EXTRA_REPORTED:
            break
        try:
            rel = p.relative_to(folder).as_posix()
            if p.is_symlink() or p.is_file():
                if rel not in listed and not rel.endswith(".tmp"):
                    extra.append(rel)
        except OSError:
            continue
    pickles = [x for x in extra if Path(x).suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        warnings.warn(f"{folder}: {', '.join(pickles)}: not part of the saved model (a pickle or other code-bearing "
                      "file); it is never loaded, but check where it came from", ModelFolderWarning, stacklevel=3)
    others = [x for x in extra if x not in pickles]
    if others:
        warnings.warn(f"{folder}: {', '.join(others)}: not listed in config.json; ignored", ModelFolderWarning,
                      stacklevel=3)
    return extra


class ModelFolderWarning(UserWarning):
    """A saved-model folder holds files its config does not list."""
