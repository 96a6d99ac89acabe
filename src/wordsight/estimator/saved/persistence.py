"""Saving and loading a fitted :class:`~wordsight.estimator.Classifier`: a folder of JSON + safetensors.

``config.json`` holds everything needed to rebuild the model (encoder names and fingerprints,
their preprocessing, class names in order, fusion, head parameters, prior, library version);
``head.safetensors`` holds the head's learned arrays. No pickle. How the folder is written and
verified (checksums, confinement, atomic overwrite) is :mod:`wordsight.storage`'s, as for every
saved object; here: what the config holds, the Classifier's field checks (:mod:`.checks`),
and that each encoder still computes the features the head was fitted on.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...io.safe_files import confined
from ...storage import ModelFolderError, read_folder, write_folder
from ...storage import jsonable as _jsonable
from ...storage import read_config as _read_config
from . import checks as _checks
from .checks import HEAD_FILE, SEARCH_SIDE_FILES
from .finetuned_weights import load_weights, save_weights

FORMAT = "wordsight-classifier"
FORMAT_VERSION = 1
ENSEMBLE_FORMAT = "wordsight-ensemble"  # models.ensemble: members + weights / a meta-head
CONFIG = "config.json"
PROBE_FILE = "prior_probe.safetensors"  # the few-shot learner on the prior, when it is the learner
PRIOR_DIR = "zero_shot"  # the prior's ZeroShotPipeline, saved by its own save()
CALIBRATION_FILE = "calibration.safetensors"  # out-of-fold logits and classes of the training images


def save_classifier(clf, folder) -> str:
    """Write ``clf``'s parameters and :class:`~.state.FittedState` to ``folder`` (atomically)."""
    clf._check_fitted()
    return write_folder(folder, lambda tmp: _write(clf, tmp))


def _write(clf, folder: Path) -> dict:
    """Write the model's files into ``folder``; its config (``files`` and checksums: the storage's)."""
    from safetensors.numpy import save_file

    from ..._version import __version__
    from ...encoders import get_config

    state = clf.state_
    arrays, info = state.head.state()
    save_file(arrays, str(folder / HEAD_FILE))
    prior = None
    if state.prior is not None:
        state.prior.save(folder / PRIOR_DIR)
        prior = {**_jsonable(state.mix.to_json()), "folder": PRIOR_DIR, "view": state.prior.view_,
                 "zero_shot_method": state.prior._method(), "text_model": clf.text_model, "learner": "mix"}
        if state.probe is not None:
            probe_arrays, probe_info = state.probe.state()
            save_file(probe_arrays, str(folder / PROBE_FILE))
            prior.update(learner="probe", probe={"info": _jsonable(probe_info), "file": PROBE_FILE,
                                                 "arrays": sorted(probe_arrays)})
    paired = None
    if state.paired is not None:  # the second head of a paired / late model (models.paired)
        paired_arrays, paired = state.paired.to_config(state.head.name)
        save_file(paired_arrays, str(folder / paired["file"]))
        paired = _jsonable(paired)
    encoders = []
    weights = save_weights(folder, clf.encoder_names if state.feature_dims else [])  # fine-tuned encoders
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
        "prior": prior,
    }
    if paired is not None:  # only then, so that other models' configs stay as they were
        config["paired"] = paired
    task_state = clf.task_.state()
    if task_state is not None:  # what the task learned (a multi-label model's thresholds); only then
        config["task_state"] = _jsonable(task_state)
    if state.calibration is not None:  # out-of-fold scores for prediction sets and "unknown"
        cal = state.calibration
        arrays = {"logits": np.ascontiguousarray(cal.logits, np.float32), "y": np.ascontiguousarray(cal.y)}
        if cal.bank is not None:
            arrays["bank"] = np.ascontiguousarray(cal.bank, np.float32)
        save_file(arrays, str(folder / CALIBRATION_FILE))
        config["calibration"] = {"file": CALIBRATION_FILE, "folds": int(cal.folds), "n": len(cal.y),
                                 "method": "cross-conformal" if cal.folds else "held-out"}
    return config


def read_config(folder) -> dict:
    """The checked ``config.json`` of a saved model folder, a Classifier's or an ensemble's
    (refused in one line otherwise)."""
    return _read_config(folder, (FORMAT, ENSEMBLE_FORMAT), version=FORMAT_VERSION, what="model")


def load_classifier(folder, cls):
    """A ``cls`` (the Classifier class) rebuilt from ``folder``, every file verified first."""
    from ...encoders import get_config
    from ..heads import head_class
    from ..prior_mix import PriorMix
    from ..state import FittedState

    folder = Path(folder)
    stored = read_folder(folder, (FORMAT,), version=FORMAT_VERSION, what="classifier", check=_checks.check_config,
                         ignore=SEARCH_SIDE_FILES)  # every listed file confined, bounded, its checksum right
    config, contents = stored.config, stored.contents
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
    arrays = stored.arrays(HEAD_FILE)  # the bytes whose checksum was checked
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
    paired = _load_paired(stored, clf)
    n_head = int(config["n_features_in"])
    if paired is not None:
        fusion.paired_, n_head = paired, fusion.head_widths(paired)[0]
    _checks.check_head(head, config["classes"], n_head, folder / HEAD_FILE)
    state = FittedState(classes, head, int(config["n_features_in"]),
                        {e["name"]: int(e["dim"]) for e in config["encoders"]}, config.get("text_dim"),
                        config.get("probs_encoder"), fusion, _precisions(config["encoders"], folder))
    prior = config.get("prior")
    if prior:
        from ...zeroshot.tags import load_prior

        try:  # a TagPrior where its folder says "tags"
            fusion.prior_ = load_prior(confined(folder, prior["folder"], "prior folder"))
        except Exception as e:
            raise ModelFolderError(f"{folder / prior['folder']}: cannot load the language prior ({e})") from e
        if bool(getattr(fusion.prior_, "tags", False)) != bool(clf.task_.label_sets):
            raise ModelFolderError(f"{folder / prior['folder']}: the language prior does not fit a {clf.task_.name} model")
        fusion.mix_ = PriorMix.from_json(prior)
        if prior.get("learner", "mix") == "probe":
            fusion.probe_ = _load_probe(stored, prior, clf, folder)
            if state.probe.arrays["W"].shape != (len(classes), state.n_features):
                raise ModelFolderError(f"{folder / PROBE_FILE}: shape {state.probe.arrays['W'].shape} does not fit "
                                       f"{len(classes)} classes x {state.n_features} features")
        if [str(c) for c in state.prior.classes_] != [str(c) for c in classes]:
            raise ModelFolderError(f"{folder}: the zero-shot prior's classes do not match the model's")
    state.calibration = _load_calibration(stored, len(classes), state.n_features)
    state.task = _load_task(config, clf, len(classes), folder)
    clf.classes_, clf.n_features_in_, clf.fit_failures_, clf.state_ = classes, state.n_features, [], state
    return clf


def _load_probe(stored, prior: dict, clf, folder: Path):
    """The few-shot prior probe: per class (:class:`~..prior_probe.PriorProbe`) or, in a
    multi-label model, per label (:class:`~..label_prior_probe.LabelPriorProbe`), checked."""
    from ..label_prior_probe import LABEL_SETS, LabelPriorProbe
    from ..prior_probe import PriorProbe

    arrays = stored.arrays(PROBE_FILE) if PROBE_FILE in stored.contents else {}
    _checks.check_arrays(arrays, folder / PROBE_FILE)
    info = prior["probe"].get("info") if isinstance(prior.get("probe"), dict) else None
    per_label = isinstance(info, dict) and info.get("targets") == LABEL_SETS
    label_sets = bool(clf.task_.label_sets)
    if per_label != label_sets:
        raise ModelFolderError(f"{folder / PROBE_FILE}: a {'per-label' if per_label else 'per-class'} prior probe "
                               f"in a {clf.task_.name} model")
    try:
        return (LabelPriorProbe if per_label else PriorProbe).from_state(
            arrays, info, {"C": info.get("C"), "class_weight": clf.head.class_weight})
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise ModelFolderError(f"{folder / PROBE_FILE}: not a prior probe of this model ({e})") from None


def _load_task(config: dict, clf, n_classes: int, folder: Path):
    """The fitted task: what the config's ``task_state`` holds (thresholds), checked."""
    task = clf.task_
    entry = config.get("task_state")
    if entry is None:
        return task
    try:
        return task.from_state(entry, n_classes)
    except (TypeError, ValueError) as e:
        raise ModelFolderError(f"{folder / CONFIG}: 'task_state' does not fit the model ({e})") from None


def _params(config: dict) -> dict:
    """The Classifier's keyword arguments: the fusion and head rebuilt from their saved parameters
    (or, in a folder saved before they had their own, from the flat ones: :mod:`.legacy_config`)."""
    from ..fusion import fusion_class
    from ..heads import head_class
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
    from ..precision import CONCRETE

    out = {e["name"]: e.get("precision", "fp32") for e in encoders}
    bad = {k: v for k, v in out.items() if v not in CONCRETE}
    if bad:
        raise ModelFolderError(f"{folder / CONFIG}: encoder precision {bad} is not one of {', '.join(CONCRETE)}")
    return out


def _load_paired(stored, clf):
    """The :class:`~.paired.PairedText` of a ``paired`` / ``late`` model (None for other fusions),
    refused with the reason when the config, the file and the fusion do not fit together."""
    from ..paired_text import PAIRED_HEAD_FILE, PairedText

    config, contents, folder = stored.config, stored.contents, stored.path
    d = config.get("paired")
    fusion = clf.fusion_
    if not fusion.paired:
        if d is not None:
            raise ModelFolderError(f"{folder / CONFIG}: a 'paired' entry in a model of fusion {fusion.name!r}")
        return None
    if not isinstance(d, dict) or d.get("file") != PAIRED_HEAD_FILE or PAIRED_HEAD_FILE not in contents:
        raise ModelFolderError(f"{folder}: fusion {fusion.name!r} needs its second head in {PAIRED_HEAD_FILE}, "
                               "listed in config.json's 'paired' entry and 'files'")
    arrays = stored.arrays(PAIRED_HEAD_FILE)
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


def _load_calibration(stored, n_classes: int, n_features: int):
    """The out-of-fold scores of a folder that has them (None for one saved before they were
    kept), refused with the reason when they do not fit the model."""
    from ..conformal import Calibration

    entry, path = stored.config.get("calibration"), stored.path / CALIBRATION_FILE
    if entry is None:
        return None
    if not isinstance(entry, dict) or entry.get("file") != CALIBRATION_FILE or CALIBRATION_FILE not in stored.contents:
        raise ModelFolderError(f"{stored.path / CONFIG}: the 'calibration' entry must name {CALIBRATION_FILE}, "
                               "listed in 'files'")
    arrays = stored.arrays(CALIBRATION_FILE)
    logits, y = arrays.get("logits"), arrays.get("y")
    ok = (logits is not None and y is not None and logits.ndim == 2 and logits.shape[1] == n_classes
          and y.shape == (len(logits),) and len(y) >= 2 and np.isfinite(logits).all()
          and np.issubdtype(y.dtype, np.integer) and 0 <= y.min() and y.max() < n_classes)
    if not ok:
        raise ModelFolderError(f"{path}: not out-of-fold scores of this model's {n_classes} classes "
                               "(arrays 'logits' (n, classes) finite and 'y' (n,) class indices)")
    bank = arrays.get("bank")
    if bank is not None and not (bank.ndim == 2 and bank.shape[1] == n_features and np.isfinite(bank).all()):
        raise ModelFolderError(f"{path}: 'bank' must be finite training rows of {n_features} features")
    folds = entry.get("folds")
    return Calibration(np.asarray(logits, np.float64), np.asarray(y, np.int64), folds if type(folds) is int else 0,
                       None if bank is None else np.asarray(bank, np.float32))
