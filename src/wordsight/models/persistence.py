"""Saving and loading a fitted :class:`~wordsight.models.Classifier`: a folder of JSON + safetensors.

``config.json`` holds everything needed to rebuild the model (encoder names and fingerprints,
their preprocessing, class names in order, fusion, head parameters, prior, library version) and
the sha256 of every weight file; ``head.safetensors`` holds the head's learned arrays. No pickle.
Loading checks the format version, every checksum (a changed or truncated file is refused), the
config's own checksum, and that each encoder still computes the features the head was fitted on.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..io.safe_files import confined
from . import _folder_checks as _checks

FORMAT = "wordsight-classifier"
FORMAT_VERSION = 1
CONFIG = "config.json"
HEAD_FILE = "head.safetensors"
PRIOR_DIR = "zero_shot"  # the prior's ZeroShotClassifier, saved by its own save()


class ModelFolderError(ValueError):
    """A saved-model folder is missing, damaged, tampered with or incompatible."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _canonical(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _jsonable(v):
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    return None  # e.g. a FeatureCache object: not part of the model


def save_classifier(clf, folder) -> str:
    from safetensors.numpy import save_file

    from .._version import __version__
    from ..encoders import get_config

    clf._check_fitted()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays, info = clf.head_.to_arrays()
    save_file(arrays, str(folder / HEAD_FILE))
    files = {HEAD_FILE: _sha256(folder / HEAD_FILE)}
    prior = None
    if getattr(clf, "prior_", None) is not None:
        clf.prior_.save(folder / PRIOR_DIR)
        for p in sorted((folder / PRIOR_DIR).rglob("*")):
            if p.is_file():
                files[p.relative_to(folder).as_posix()] = _sha256(p)
        prior = {"weight": clf.prior_weight_, "temperature": clf.prior_temperature_,
                 "head_temperature": clf.prior_head_temperature_,
                 "scores": _jsonable(clf.prior_scores_), "folder": PRIOR_DIR, "view": clf.prior_view_,
                 "zero_shot_method": clf.prior_.conse.method, "text_model": clf.text_model}
    encoders = []
    if clf.feature_dims_:
        for name in clf.encoder_names:
            cfg = get_config(name)
            encoders.append({"name": name, "fingerprint": cfg.fingerprint, "preprocessing": _jsonable(cfg.preprocessing()),
                             "dim": clf.feature_dims_[name]})
    classes = [_jsonable(c) for c in clf.classes_]
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__,
        "params": {k: _jsonable(v) for k, v in clf.get_params().items() if k != "cache"},
        "classes": classes, "class_type": type(classes[0]).__name__,
        "encoders": encoders, "fusion": clf.fusion,
        "n_features_in": int(clf.n_features_in_), "text_dim": getattr(clf, "text_dim_", None),
        "probs_encoder": clf.probs_encoder_,
        "head": {"name": clf.head, "info": _jsonable(info), "arrays": sorted(arrays)},
        "prior": prior, "files": files,
    }
    config["config_sha256"] = _canonical(config)
    tmp = folder / (CONFIG + ".tmp")
    tmp.write_text(json.dumps(config, indent=2))
    tmp.replace(folder / CONFIG)
    return str(folder)


def read_config(folder) -> dict:
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: not a folder (a saved model is a folder with {CONFIG})")
    path = folder / CONFIG
    if not path.exists():
        raise ModelFolderError(f"{path}: missing; {folder} is not a saved wordsight model")
    config = _checks.read_config_bytes(path)  # a regular file, size-capped, bounded JSON depth
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFolderError(f"{path}: not a wordsight classifier config (format {config.get('format') if isinstance(config, dict) else None!r})")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFolderError(f"{path}: format version {version!r} is newer than this wordsight reads "
                               f"({FORMAT_VERSION}); upgrade wordsight (saved with {config.get('library_version')})")
    stored = config.pop("config_sha256", None)
    if stored != _canonical(config):
        raise ModelFolderError(f"{path}: checksum mismatch: the config was edited or damaged after saving")
    return config


def load_classifier(folder):
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_bytes

    from ..encoders import get_config
    from .classifier import Classifier
    from .heads import head_class

    folder = Path(folder)
    config = read_config(folder)
    _checks.check_config(config, folder / CONFIG)
    contents = {}
    for name, p in _checks.checked_files(folder, config["files"]).items():  # confined, regular, size-capped
        contents[name] = _checks.read_weights(p)
        if hashlib.sha256(contents[name]).hexdigest() != config["files"][name]:
            raise ModelFolderError(f"{p}: checksum mismatch (expected sha256 {config['files'][name][:12]}...): "
                                   "the file was modified or truncated after saving")
    _checks.report_unlisted(folder, config["files"])
    for enc in config["encoders"]:
        try:
            cfg = get_config(enc["name"])
        except Exception as e:
            raise ModelFolderError(f"{folder}: encoder {enc['name']!r} is not available here ({e})") from e
        if cfg.fingerprint != enc["fingerprint"]:
            raise ModelFolderError(
                f"{folder}: encoder {enc['name']!r} now preprocesses differently (fingerprint {cfg.fingerprint}, "
                f"saved {enc['fingerprint']}: preprocessing {enc['preprocessing']}); its features would not "
                "match the head: refit the model")
    try:
        arrays = load_bytes(contents[HEAD_FILE])  # the bytes whose checksum was checked
    except (SafetensorError, OSError) as e:
        raise ModelFolderError(f"{folder / HEAD_FILE}: cannot read safetensors ({e})") from e
    _checks.check_arrays(arrays, folder / HEAD_FILE)
    if sorted(arrays) != sorted(config["head"]["arrays"]):
        raise ModelFolderError(f"{folder / HEAD_FILE}: holds {sorted(arrays)}, config lists {config['head']['arrays']}")
    params = dict(config["params"])
    for k in ("encoders",):
        if isinstance(params.get(k), list):
            params[k] = tuple(params[k])
    if isinstance(params.get("C"), list):
        params["C"] = tuple(params["C"])
    try:
        clf = Classifier(**params)
    except TypeError as e:
        raise ModelFolderError(f"{folder}: parameters do not fit this wordsight's Classifier ({e})") from e
    clf._check_params()
    clf.head_ = head_class(config["head"]["name"]).from_arrays(arrays, config["head"]["info"], clf._head_params())
    classes = config["classes"]
    clf.classes_ = np.asarray(classes)
    clf.n_features_in_ = int(config["n_features_in"])
    _checks.check_head(clf.head_, classes, clf.n_features_in_, folder / HEAD_FILE)
    clf.feature_dims_ = {e["name"]: int(e["dim"]) for e in config["encoders"]}
    clf.text_dim_ = config.get("text_dim")
    clf.probs_encoder_ = config.get("probs_encoder")
    clf.fit_failures_ = []
    prior = config.get("prior")
    clf._no_prior()
    if prior:
        clf.prior_weight_, clf.prior_temperature_ = float(prior["weight"]), float(prior["temperature"])
        clf.prior_head_temperature_ = float(prior.get("head_temperature", 1.0))
        clf.prior_scores_ = prior.get("scores") or {}
        clf.prior_view_ = prior.get("view", "plain")
        from .prior import LanguagePrior

        try:
            clf.prior_ = LanguagePrior.load(confined(folder, prior["folder"], "prior folder"))
        except Exception as e:
            raise ModelFolderError(f"{folder / prior['folder']}: cannot load the language prior ({e})") from e
        clf.zero_shot_ = clf.prior_.conse
        if [str(c) for c in clf.zero_shot_.classes_] != [str(c) for c in classes]:
            raise ModelFolderError(f"{folder}: the zero-shot prior's classes do not match the model's")
    return clf
