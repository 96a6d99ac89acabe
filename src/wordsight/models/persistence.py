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

from ..io.safe_files import confined, file_sha256
from . import _folder_checks as _checks
from ._finetuned_files import load_weights, save_weights
from ._folder_checks import HEAD_FILE, ModelFolderError

FORMAT = "wordsight-classifier"
FORMAT_VERSION = 1
ENSEMBLE_FORMAT = "wordsight-ensemble"  # models.ensemble: members + weights / a meta-head; same checks here
CONFIG = "config.json"
PROBE_FILE = "prior_probe.safetensors"  # the few-shot learner on the prior, when it is the learner
PRIOR_DIR = "zero_shot"  # the prior's ZeroShotPipeline, saved by its own save()


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
    """Write ``clf``'s parameters and :class:`~.state.FittedState` to ``folder``."""
    from safetensors.numpy import save_file

    from .._version import __version__
    from ..encoders import get_config

    clf._check_fitted()
    state = clf.state_
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays, info = state.head.state()
    save_file(arrays, str(folder / HEAD_FILE))
    files = {HEAD_FILE: file_sha256(folder / HEAD_FILE)}
    prior = None
    if state.prior is not None:
        state.prior.save(folder / PRIOR_DIR)
        for p in sorted((folder / PRIOR_DIR).rglob("*")):
            if p.is_file():
                files[p.relative_to(folder).as_posix()] = file_sha256(p)
        prior = {**_jsonable(state.mix.to_json()), "folder": PRIOR_DIR, "view": state.prior.view_,
                 "zero_shot_method": state.prior._method(), "text_model": clf.text_model, "learner": "mix"}
        if state.probe is not None:
            probe_arrays, probe_info = state.probe.state()
            save_file(probe_arrays, str(folder / PROBE_FILE))
            files[PROBE_FILE] = file_sha256(folder / PROBE_FILE)
            prior.update(learner="probe", probe={"info": _jsonable(probe_info), "file": PROBE_FILE,
                                                 "arrays": sorted(probe_arrays)})
    paired = None
    if state.paired is not None:  # the second head of a paired / late model (models.paired)
        paired_arrays, paired = state.paired.to_config(state.head.name)
        save_file(paired_arrays, str(folder / paired["file"]))
        files[paired["file"]] = file_sha256(folder / paired["file"])
        paired = _jsonable(paired)
    encoders = []
    weights = save_weights(folder, clf.encoder_names if state.feature_dims else [], files)  # fine-tuned encoders
    for name in clf.encoder_names if state.feature_dims else []:
        cfg = get_config(name)
        encoders.append({"name": name, "fingerprint": cfg.fingerprint, "preprocessing": _jsonable(cfg.preprocessing()),
                         "dim": state.feature_dims[name], "precision": state.precisions.get(name, "fp32"),
                         **({"weights": weights[name]} if name in weights else {})})
    classes = [_jsonable(c) for c in state.classes]
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__,
        "params": {**{k: _jsonable(v) for k, v in clf.get_params(deep=False).items() if k != "cache"},
                   "task": clf.task_.name, "fusion": state.fusion.name, "head": state.head.name},
        "classes": classes, "class_type": type(classes[0]).__name__,
        "encoders": encoders, "task": clf.task_.name, "fusion": state.fusion.name,
        "fusion_params": _jsonable(state.fusion.get_params()),
        "n_features_in": int(state.n_features), "text_dim": state.text_dim,
        "probs_encoder": state.probs_encoder,
        "head": {"name": state.head.name, "params": _jsonable(state.head.get_params()), "info": _jsonable(info),
                 "arrays": sorted(arrays)},
        "prior": prior, "files": files,
    }
    if paired is not None:  # only then, so that other models' configs stay as they were
        config["paired"] = paired
    config["config_sha256"] = _canonical(config)
    tmp = folder / (CONFIG + ".tmp")
    tmp.write_text(json.dumps(config, indent=2))
    tmp.replace(folder / CONFIG)
    return str(folder)


def read_config(folder) -> dict:
    """The checked ``config.json`` of a saved model folder (refused in one line otherwise)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: not a folder (a saved model is a folder with {CONFIG})")
    path = folder / CONFIG
    if not path.exists():
        raise ModelFolderError(f"{path}: missing; {folder} is not a saved wordsight model")
    config = _checks.read_config_bytes(path)  # a regular file, size-capped, bounded JSON depth
    if not isinstance(config, dict) or config.get("format") not in (FORMAT, ENSEMBLE_FORMAT):
        raise ModelFolderError(
            f"{path}: not a wordsight classifier config (format {config.get('format') if isinstance(config, dict) else None!r})"
        )
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFolderError(f"{path}: format version {version!r} is newer than this wordsight reads "
                               f"({FORMAT_VERSION}); upgrade wordsight (saved with {config.get('library_version')})")
    stored = config.pop("config_sha256", None)
    if stored != _canonical(config):
        raise ModelFolderError(f"{path}: checksum mismatch: the config was edited or damaged after saving")
    return config


def load_classifier(folder, cls):
    """A ``cls`` (the Classifier class) rebuilt from ``folder``, every file verified first."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_bytes

    from ..encoders import get_config
    from .heads import head_class
    from .prior import PriorMix
    from .state import FittedState

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
    load_weights(folder, config, contents)  # fine-tuned encoders: registered from the checked bytes
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
    try:
        clf = cls(**_params(config))
        clf.check_params()
    except (TypeError, ValueError) as e:
        raise ModelFolderError(f"{folder}: parameters do not fit this wordsight's Classifier ({e})") from e
    head = head_class(config["head"]["name"]).from_state(arrays, config["head"]["info"], clf.head.get_params())
    classes = np.asarray(config["classes"])
    fusion = clf.fusion_  # unfitted; what it learned is set below
    paired = _load_paired(config, contents, clf, folder)
    n_head = int(config["n_features_in"])
    if paired is not None:
        fusion.paired_, n_head = paired, fusion.head_widths(paired)[0]
    _checks.check_head(head, config["classes"], n_head, folder / HEAD_FILE)
    state = FittedState(classes, head, int(config["n_features_in"]),
                        {e["name"]: int(e["dim"]) for e in config["encoders"]}, config.get("text_dim"),
                        config.get("probs_encoder"), fusion, _precisions(config["encoders"], folder))
    prior = config.get("prior")
    if prior:
        from ..language.pipeline import ZeroShotPipeline

        try:
            fusion.prior_ = ZeroShotPipeline.load(confined(folder, prior["folder"], "prior folder"))
        except Exception as e:
            raise ModelFolderError(f"{folder / prior['folder']}: cannot load the language prior ({e})") from e
        fusion.mix_ = PriorMix.from_json(prior)
        if prior.get("learner", "mix") == "probe":
            from .prior_probe import PriorProbe

            arrays = load_bytes(contents[PROBE_FILE]) if PROBE_FILE in contents else {}
            _checks.check_arrays(arrays, folder / PROBE_FILE)
            try:
                fusion.probe_ = PriorProbe.from_state(arrays, prior["probe"]["info"],
                                                      {"C": prior["probe"]["info"].get("C"),
                                                       "class_weight": clf.head.class_weight})
            except (KeyError, TypeError, ValueError) as e:
                raise ModelFolderError(f"{folder / PROBE_FILE}: not a prior probe of this model ({e})") from None
            if state.probe.arrays["W"].shape != (len(classes), state.n_features):
                raise ModelFolderError(f"{folder / PROBE_FILE}: shape {state.probe.arrays['W'].shape} does not fit "
                                       f"{len(classes)} classes x {state.n_features} features")
        if [str(c) for c in state.prior.classes_] != [str(c) for c in classes]:
            raise ModelFolderError(f"{folder}: the zero-shot prior's classes do not match the model's")
    clf.classes_, clf.n_features_in_, clf.fit_failures_, clf.state_ = classes, state.n_features, [], state
    return clf


def _params(config: dict) -> dict:
    """The Classifier's keyword arguments: the fusion and head rebuilt from their saved parameters
    (or, in a folder saved before they had their own, from the flat ones: :mod:`.legacy_config`)."""
    from .fusion import fusion_class
    from .heads import head_class
    from .legacy_config import parts_from_flat

    params = dict(config["params"])
    if isinstance(params.get("encoders"), list):
        params["encoders"] = tuple(params["encoders"])
    if "fusion_params" not in config:
        return parts_from_flat(params)
    head = config["head"]
    if not isinstance(config["fusion_params"], dict) or not isinstance(head.get("params"), dict):
        raise TypeError("the fusion's and the head's parameters must be objects")
    params["fusion"] = fusion_class(config["fusion"])(**config["fusion_params"])
    params["head"] = head_class(head["name"])(**{k: tuple(v) if isinstance(v, list) else v
                                                  for k, v in head["params"].items()})
    return params


def _precisions(encoders: list, folder: Path) -> dict[str, str]:
    """The precision each encoder's features had at fit (fp32 for folders saved before it was recorded)."""
    from .precision import CONCRETE

    out = {e["name"]: e.get("precision", "fp32") for e in encoders}
    bad = {k: v for k, v in out.items() if v not in CONCRETE}
    if bad:
        raise ModelFolderError(f"{folder / CONFIG}: encoder precision {bad} is not one of {', '.join(CONCRETE)}")
    return out


def _load_paired(config: dict, contents: dict, clf, folder: Path):
    """The :class:`~.paired.PairedText` of a ``paired`` / ``late`` model (None for other fusions),
    refused with the reason when the config, the file and the fusion do not fit together."""
    from safetensors.numpy import load as load_bytes

    from .paired import PAIRED_HEAD_FILE, PairedText

    d = config.get("paired")
    fusion = clf.fusion_
    if not fusion.paired:
        if d is not None:
            raise ModelFolderError(f"{folder / CONFIG}: a 'paired' entry in a model of fusion {fusion.name!r}")
        return None
    if not isinstance(d, dict) or d.get("file") != PAIRED_HEAD_FILE or PAIRED_HEAD_FILE not in contents:
        raise ModelFolderError(f"{folder}: fusion {fusion.name!r} needs its second head in {PAIRED_HEAD_FILE}, "
                               "listed in config.json's 'paired' entry and 'files'")
    try:
        arrays = load_bytes(contents[PAIRED_HEAD_FILE])
    except Exception as e:
        raise ModelFolderError(f"{folder / PAIRED_HEAD_FILE}: cannot read safetensors ({e})") from None
    _checks.check_arrays(arrays, folder / PAIRED_HEAD_FILE)
    image_dims = sum(int(e["dim"]) for e in config["encoders"])
    try:
        paired = PairedText.from_config(d, arrays, fusion.name, int(config["n_features_in"]), clf.head.get_params(),
                                        image_dims)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFolderError(f"{folder / CONFIG}: the 'paired' entry does not fit the model ({e})") from None
    if paired.weight != float(fusion.weight):
        raise ModelFolderError(f"{folder / CONFIG}: the 'paired' entry's weight {paired.weight:g} is not the "
                               f"model's fusion weight {fusion.weight:g}")
    _checks.check_head(paired.head, config["classes"], fusion.head_widths(paired)[1], folder / PAIRED_HEAD_FILE)
    return paired
