"""The detector's folder, through :mod:`wordsight.storage`: ``config.json`` (format
``wordsight-anomaly-detector``: encoders, method, k, reject rate, threshold) + ``scorer.safetensors``
(the normal features for ``knn``; mean and precision for ``mahalanobis``), every file checksummed;
a field, an array or a shape that does not fit is refused in one :class:`ModelFolderError` line."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ...storage import ModelFolderError, jsonable, read_folder, write_folder
from .patches import GRID
from .scorers import SCORERS

DETECTOR_FORMAT = "wordsight-anomaly-detector"
DETECTOR_FORMAT_VERSION = 1
STATE_FILE = "scorer.safetensors"
ARRAYS = {"knn": ("bank",), "mahalanobis": ("mean", "precision"), "patchcore": ("bank",), "words": ()}


def save_detector(det, folder) -> str:
    from safetensors.numpy import save_file

    from ..._version import __version__

    def write(tmp: Path) -> dict:
        state = det.scorer_.state() if det.scorer_ is not None else {}
        save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(tmp / STATE_FILE))
        words = getattr(det, "words_", None)
        return {"format": DETECTOR_FORMAT, "format_version": DETECTOR_FORMAT_VERSION, "library_version": __version__,
                "encoders": det.encoder_names, "method": det.method, "k": det.k, "reject_rate": det.reject_rate,
                "threshold": det.threshold_, "n_train": det.n_train_, "n_features": det.n_features_in_,
                "small_input": jsonable(det.small_input), "state": STATE_FILE, "coreset": det.coreset,
                "bank_size": int(len(state["bank"])) if "bank" in state else 0,
                "class_name": det.class_name if words is not None else None, "text_weight": float(det.text_weight),
                "words_view": words.pipeline_.view_ if words is not None and words.fixed_view_ else None,
                "image_ref": getattr(det, "image_ref_", None), "word_ref": getattr(det, "word_ref_", None),
                "precisions": getattr(det, "precisions_", None)}

    return write_folder(folder, write)


def _check(cond: bool, path, what: str) -> None:
    if not cond:
        raise ModelFolderError(f"{path}: {what}")


def _check_config(c: dict, path: Path) -> None:
    enc, k, n = c.get("encoders"), c.get("k"), c.get("n_train")
    _check(c.get("method") in ARRAYS, path, f"field 'method' must be one of {list(ARRAYS)}, got {c.get('method')!r}")
    _check(isinstance(enc, list) and enc and all(isinstance(e, str) for e in enc), path,
           "field 'encoders' must be a non-empty list of encoder names")
    _check(isinstance(k, int) and not isinstance(k, bool) and k >= 1, path, f"field 'k' must be an integer >= 1, got {k!r}")
    least = 0 if c.get("method") == "words" else k + 1
    _check(isinstance(n, int) and not isinstance(n, bool) and n >= least, path,
           f"field 'n_train' must be an integer >= {least}, got {n!r}")
    _check_words(c, path)
    _check_precisions(c, path)
    for f in ("threshold", "reject_rate"):
        _check(isinstance(c.get(f), (int, float)) and math.isfinite(c[f]), path, f"field {f!r} must be a finite number")
    least = 0 if c.get("method") == "words" else 1
    _check(isinstance(c.get("n_features"), int) and c["n_features"] >= least, path,
           f"field 'n_features' must be an integer >= {least}")
    _check(c.get("state") == STATE_FILE and STATE_FILE in c.get("files", {}), path, f"{STATE_FILE} must be listed in 'files'")


def _check_precisions(c: dict, path: Path) -> None:
    """``precisions``: absent or null (a words detector; a folder saved before it was recorded), else
    the precision of each encoder's features at fit."""
    from ..precision import CONCRETE

    p = c.get("precisions")
    _check(p is None or (isinstance(p, dict) and set(p) == set(c["encoders"]) and all(v in CONCRETE for v in p.values())),
           path, f"field 'precisions' must map each encoder to one of {', '.join(CONCRETE)}, got {p!r}")


def _check_words(c: dict, path: Path) -> None:
    from .words import check_class_name

    name = c.get("class_name")
    if c.get("method") == "words":
        _check(name is not None, path, "method 'words' needs field 'class_name'")
    if name is None:
        return
    try:
        check_class_name(name)
    except ValueError as e:
        raise ModelFolderError(f"{path}: field {e}") from None
    w = c.get("text_weight")
    _check(isinstance(w, (int, float)) and 0 <= w <= 1, path, "field 'text_weight' must be a number in [0, 1]")
    if c.get("method") != "words":
        for f in ("image_ref", "word_ref"):
            v = c.get(f)
            _check(isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) and math.isfinite(x)
                                                               for x in v) and v[1] > 0, path,
                   f"field {f!r} must be [median, scale > 0]")


def _check_arrays(arrays: dict, c: dict, path: Path) -> None:
    if c["method"] == "words":
        _check(not arrays, path, f"a words detector holds no arrays, found {sorted(arrays)}")
        return
    if c["method"] == "patchcore":
        b, d = c.get("bank_size"), c["n_features"]
        _check(isinstance(b, int) and not isinstance(b, bool) and b >= 1, path, "field 'bank_size' must be an integer >= 1")
        _check(d % (GRID * GRID) == 0, path, f"field 'n_features' must be a multiple of {GRID * GRID} patches")
    shapes = SCORERS[c["method"]].shapes(c)
    want = ARRAYS[c["method"]]
    _check(sorted(arrays) == sorted(want), path, f"must hold exactly {list(want)}, found {sorted(arrays)}")
    for name in want:
        a = arrays[name]
        _check(a.shape == shapes[name], path, f"array {name!r} has shape {a.shape}, expected {shapes[name]}")
        _check(bool(np.isfinite(a).all()), path, f"array {name!r} holds non-finite values")


def load_detector(cls, folder):
    folder = Path(folder)
    stored = read_folder(folder, (DETECTOR_FORMAT,), version=DETECTOR_FORMAT_VERSION, what="anomaly detector",
                         check=_check_config)
    c = stored.config
    arrays = stored.arrays(STATE_FILE)
    _check_arrays(arrays, c, folder / STATE_FILE)
    det = cls(encoders=c["encoders"], method=c["method"], k=c["k"], reject_rate=c["reject_rate"],
              small_input=c.get("small_input", "auto"), coreset=c.get("coreset", 0.1),
              class_name=c.get("class_name"), text_weight=c.get("text_weight", 0.1))
    det.scorer_ = SCORERS[c["method"]](c["k"]).set_state(arrays) if c["method"] in SCORERS else None
    det.image_ref_, det.word_ref_, det.words_ = c.get("image_ref"), c.get("word_ref"), None
    # what the fit's features had (None in a folder saved before it was recorded: ``auto`` again)
    det.precisions_ = c.get("precisions")
    if det.class_name is not None:
        from .words import WordScorer

        det.words_ = WordScorer(det.class_name, det.encoder_names[0]).fit(view=c.get("words_view"))
    det.threshold_, det.n_train_, det.n_features_in_, det.fit_failures_ = float(c["threshold"]), c["n_train"], c["n_features"], []
    return det
