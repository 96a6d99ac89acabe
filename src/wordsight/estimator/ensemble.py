"""Ensembles of fitted Classifiers: soft voting and stacking, saved as JSON + safetensors.

- **vote**: ``P = sum_i w_i P_i`` (the members' probabilities, weights summing to 1);
- **stack**: a logistic meta-head on the members' probabilities side by side,
  ``P = softmax([P_1 .. P_m] @ W.T + b)``, fitted on out-of-fold probabilities (each training
  image scored by members that never saw it, :mod:`.search`), so the meta-head learns how far to
  trust each member on unseen images.

An :class:`Ensemble` reads the images once for the union of its members' encoders
(:func:`~.blocks.extract_blocks`) and hands each member its subset (:mod:`.block_sets`). It
implements :class:`~.fitted.FittedModel`, plus what the CLI, the server, the report and the Ray
batch callable read of a fitted model (``predict_records``, ``proba_featurized``, ``encoder_names``,
``fusion``, ...); ``wordsight.load`` returns one for an ensemble folder.

Folder (:mod:`wordsight.storage`): ``config.json`` (format ``wordsight-ensemble``: kind, classes,
member folders, weights, the sha256 of every file, its own checksum), ``members/<i>/`` (each a
saved Classifier, loaded and checked as one) and, for stacking, ``meta.safetensors`` (``coef``,
``intercept``). No pickle.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .._util.numerics import softmax
from ..io.safe_files import confined
from ..storage import ModelFolderError, declared_format, jsonable, read_folder, write_folder
from .block_sets import subset_blocks
from .feature_blocks import FeatureBlocks, Featurized, input_rows, predicted_classes, prediction_records
from .saved import checks as _checks
from .saved.persistence import ENSEMBLE_FORMAT

ENSEMBLE_FORMAT_VERSION = 1
KINDS = ("vote", "stack")
META_FILE = "meta.safetensors"
MEMBERS_DIR = "members"
MAX_MEMBERS = 16
MEMBER_OPTIONS = ("cache", "batch_size", "quiet")  # what set_params passes to the members


def stack_features(member_probas) -> np.ndarray:
    """The meta-head's input: the members' probabilities side by side, (n, m * n_classes)."""
    return np.concatenate([np.asarray(p, np.float64) for p in member_probas], 1)


def fit_meta(member_probas, y: np.ndarray, n_classes: int, C: float = 1.0, seed: int = 0) -> dict[str, np.ndarray]:
    """The stacking meta-head (multinomial logistic regression) on out-of-fold probabilities."""
    from sklearn.linear_model import LogisticRegression

    Z = stack_features(member_probas)
    model = LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(Z, y)
    coef, intercept = np.zeros((n_classes, Z.shape[1])), np.full(n_classes, -1e3)
    if len(model.classes_) == 2:  # binary: the second class's log-odds, the first at 0
        coef[model.classes_[1]], intercept[model.classes_[1]] = model.coef_[0], model.intercept_[0]
        intercept[model.classes_[0]] = 0.0
    else:
        coef[model.classes_], intercept[model.classes_] = model.coef_, model.intercept_
    return {"coef": coef, "intercept": intercept}


def combine(kind: str, member_probas, weights=None, meta: dict | None = None) -> np.ndarray:
    """The ensemble's probabilities from its members' (see the module doc)."""
    if kind == "vote":
        w = np.asarray(weights if weights is not None else np.ones(len(member_probas)), np.float64)
        return sum(wi * np.asarray(p, np.float64) for wi, p in zip(w / w.sum(), member_probas))
    if kind == "stack":
        return softmax(stack_features(member_probas) @ meta["coef"].T + meta["intercept"])
    raise ValueError(f"unknown ensemble kind {kind!r}: choose one of {', '.join(KINDS)}")


class Ensemble:
    """Soft voting (``kind='vote'``) or stacking (``kind='stack'``) over fitted Classifiers that
    share their classes."""

    fusion_name = "ensemble"
    reads_texts = False  # members are image models (the search offers no paired-text fusion)
    augment = 0
    tta = 0
    prior_ = None
    prior_mix_ = None

    def __init__(self, members, kind: str = "vote", weights=None, meta: dict | None = None, info: dict | None = None):
        if kind not in KINDS:
            raise ValueError(f"unknown ensemble kind {kind!r}: choose one of {', '.join(KINDS)}")
        if not members:
            raise ValueError("an ensemble needs at least one member")
        classes = [m.class_names for m in members]
        if any(c != classes[0] for c in classes):
            raise ValueError(f"the members' classes differ: {classes}")
        if kind == "stack" and meta is None:
            raise ValueError("a stacking ensemble needs its meta-head (coef, intercept)")
        self.members = list(members)
        self.kind = kind
        self.weights = np.full(len(members), 1 / len(members)) if weights is None else np.asarray(weights, np.float64)
        self.meta = meta
        self.info = dict(info or {})
        self.classes_ = members[0].classes_
        self.fit_failures_: list = []

    # ------------------------------------------------------------------ what the callers read
    @property
    def head_name(self) -> str:
        return self.kind

    @property
    def task_(self):
        """The members' :class:`~.tasks.Task` (what the report scores and shows)."""
        return self.members[0].task_

    @property
    def class_names(self) -> list[str]:
        return self.members[0].class_names

    @property
    def encoder_names(self) -> list[str]:
        """Every member's encoders, each once, in first-use order."""
        out = []
        for m in self.members:
            out += [e for e in m.encoder_names if e not in out]
        return out

    @property
    def probs_encoder_(self):
        return self.members[0].probs_encoder_

    @property
    def head_(self):
        """What the report shows as the head's facts: the kind, members and weights."""
        from types import SimpleNamespace

        return SimpleNamespace(info={"ensemble": self.kind, "members": self.describe_members(),
                                     "weights": [round(float(w), 4) for w in self.weights]})

    @property
    def n_features_in_(self) -> int:
        return len(self.members) * len(self.classes_)

    def describe_members(self) -> list[str]:
        from .candidates import Candidate

        return [Candidate.of(m).name for m in self.members]

    def set_params(self, **params) -> "Ensemble":
        unknown = sorted(set(params) - set(MEMBER_OPTIONS))
        if unknown:
            raise ValueError(f"an ensemble takes only {', '.join(MEMBER_OPTIONS)} as parameters, not {unknown}")
        for m in self.members:
            m.set_params(**params)
        return self

    # ------------------------------------------------------------------ features and probabilities
    def extract(self, X) -> FeatureBlocks:
        """Every member's encoders' features of ``X``, read once."""
        from ..features import FeatureSet
        from ..io.sources import open_source
        from .feature_blocks import extract_blocks

        if isinstance(X, FeatureBlocks):
            return X
        if isinstance(X, FeatureSet):
            raise ValueError("an ensemble reads images or FeatureBlocks, not a FeatureSet")
        from .precision import for_features

        first = self.members[0]
        recorded = {e: p for m in self.members for e, p in getattr(getattr(m, "state_", None), "precisions", {}).items()}
        return extract_blocks(open_source(X), self.encoder_names, cache=first.cache, batch_size=first.batch_size,
                              quiet=first.quiet, small_input=first.small_input,
                              precision=for_features(self.encoder_names, "auto", recorded))

    def member_probas(self, blocks: FeatureBlocks) -> list[np.ndarray]:
        """Each member's probabilities of the images of ``blocks`` (rows in order)."""
        out = []
        for m in self.members:
            mb = subset_blocks(blocks, m.encoder_names)
            out.append(m.proba_featurized(m.featurize(mb)))
        return out

    def featurize(self, X) -> Featurized:
        """The meta-features (members' probabilities side by side) of the images that could be read."""
        from ..io.sources import open_source

        if isinstance(X, np.ndarray):
            raise ValueError("an ensemble reads images or FeatureBlocks, not a feature matrix")
        src = None if isinstance(X, FeatureBlocks) else open_source(X)
        blocks = self.extract(X if src is None else src)
        Z = stack_features(self.member_probas(blocks)) if len(blocks) else np.zeros((0, self.n_features_in_))
        rows, n = input_rows(src, blocks)
        return Featurized(Z, blocks.samples, blocks.failures, blocks, None, n, rows)

    def proba_featurized(self, F: Featurized) -> np.ndarray:
        k = len(self.classes_)
        parts = [F.matrix[:, i * k:(i + 1) * k] for i in range(len(self.members))]
        return combine(self.kind, parts, self.weights, self.meta)

    def predict_proba(self, X) -> np.ndarray:
        """(n_inputs, n_classes); NaN rows for images that could not be read."""
        F = self.featurize(X)
        return F.scatter(self.proba_featurized(F))

    def predict(self, X) -> np.ndarray:
        return predicted_classes(self.predict_proba(X), self.classes_)

    # ------------------------------------------------------------------ prediction sets (issue 23)
    def calibration_or_none(self):
        """The members' out-of-fold scores combined (:func:`.conformal.combined_calibration`), or None."""
        from .conformal import combined_calibration

        return combined_calibration(self.members, self.kind, self.weights, self.meta, combine)

    def calibration_scores(self):
        cal = self.calibration_or_none()
        if cal is None:
            raise ValueError("this ensemble has no calibration scores: a member kept none, or the members were fitted "
                             "on different images")
        return cal

    def predict_set_matrix(self, X, coverage: float = 0.9, method: str = "lac") -> np.ndarray:
        """As :meth:`Classifier.predict_set_matrix <wordsight.estimator.Classifier.predict_set_matrix>`."""
        from .conformal import set_matrix

        return set_matrix(self.predict_proba(X), self.calibration_scores(), coverage, method)

    def predict_set(self, X, coverage: float = 0.9, method: str = "lac") -> list[list]:
        return [[c for c, k in zip(self.classes_.tolist(), row) if k] for row in self.predict_set_matrix(X, coverage, method)]

    def describe_blocks(self, blocks: FeatureBlocks, proba=None) -> list[str | None]:
        """The first member's words for ``blocks``; with ``proba`` (the ensemble's rows) they lead
        with the classes the ensemble finds most likely (``models.words``)."""
        m = self.members[0]
        return m.describe_blocks(subset_blocks(blocks, m.encoder_names), proba) if blocks is not None else []

    def describe(self, X) -> list[str | None]:
        F = self.featurize(X)
        out = [None] * F.n_inputs
        for r, t in zip(F.rows, self.describe_blocks(F.blocks, self.proba_featurized(F))):
            out[r] = t
        return out

    def predict_records(self, X, top_k: int = 5, describe: bool = True) -> list:
        """As :meth:`Classifier.predict_records <wordsight.estimator.Classifier.predict_records>`."""
        return prediction_records(self, X, top_k, describe)

    # ------------------------------------------------------------------ persistence
    def save(self, folder) -> str:
        """``config.json`` + ``members/<i>/`` (saved Classifiers) + ``meta.safetensors`` (stacking), atomically."""
        return write_folder(folder, self._write)

    def _write(self, folder: Path) -> dict:
        from safetensors.numpy import save_file

        from .._version import __version__

        names = []
        for i, m in enumerate(self.members):
            name = f"{MEMBERS_DIR}/{i}"
            m.save(folder / name)
            names.append(name)
        meta = None
        if self.kind == "stack":
            save_file({k: np.ascontiguousarray(v, np.float64) for k, v in self.meta.items()}, str(folder / META_FILE))
            meta = {"file": META_FILE, "arrays": sorted(self.meta)}
        return {"format": ENSEMBLE_FORMAT, "format_version": ENSEMBLE_FORMAT_VERSION, "library_version": __version__,
                "kind": self.kind, "classes": [jsonable(c) for c in self.classes_], "members": names,
                "weights": [float(w) for w in self.weights], "meta": meta, "info": jsonable(self.info)}

    @classmethod
    def load(cls, folder) -> "Ensemble":
        """An ensemble saved by :meth:`save`, every file verified; refusals are one
        :class:`ModelFolderError` naming the folder and the problem."""
        try:
            return _load(Path(folder), cls)
        except ModelFolderError:
            raise
        except Exception as e:
            raise ModelFolderError(f"{folder}: cannot load the ensemble ({type(e).__name__}: {e})") from None


def is_ensemble_folder(folder) -> bool:
    """Whether ``folder``'s config.json names the ensemble format (read bounded; no checks yet)."""
    try:
        return declared_format(folder) == ENSEMBLE_FORMAT
    except ModelFolderError:
        return False


def _check(cond: bool, path: Path, what: str) -> None:
    if not cond:
        raise ModelFolderError(f"{path}: {what}")


def _check_config(config: dict, path: Path) -> None:
    """The ensemble's fields, before any file is read."""
    members, weights, kind = config.get("members"), config.get("weights"), config.get("kind")
    _check(kind in KINDS, path, f"field 'kind' must be one of {list(KINDS)}, got {kind!r}")
    _check(isinstance(members, list) and 1 <= len(members) <= MAX_MEMBERS and all(isinstance(m, str) for m in members),
           path, f"field 'members' must be a list of 1..{MAX_MEMBERS} folder names")
    _check(isinstance(weights, list) and len(weights) == len(members)
           and all(isinstance(w, (int, float)) and math.isfinite(w) and w >= 0 for w in weights) and sum(weights) > 0,
           path, "field 'weights' must hold one finite, non-negative weight per member (not all 0)")
    _check(isinstance(config.get("files"), dict), path, "field 'files' must map file names to sha256")


def _load(folder: Path, cls) -> Ensemble:
    from .classifier import Classifier

    stored = read_folder(folder, (ENSEMBLE_FORMAT,), version=ENSEMBLE_FORMAT_VERSION,
                         what="ensemble", check=_check_config, ignore=_checks.SEARCH_SIDE_FILES)
    config, path = stored.config, folder / "config.json"
    files, kind = config["files"], config["kind"]
    loaded = []
    for m in config["members"]:
        sub = confined(folder, m, "member folder")
        _check(not is_ensemble_folder(sub), path, f"member {m!r} is an ensemble, not a saved Classifier")
        _check((Path(m) / "config.json").as_posix() in files, path, f"member {m!r} is not covered by 'files'")
        loaded.append(Classifier.load(sub))
    meta = None
    if kind == "stack":
        _check(META_FILE in files, path, f"a stacking ensemble needs {META_FILE} listed in 'files'")
        meta = stored.arrays(META_FILE)
        _checks.check_arrays(meta, folder / META_FILE)
        k = len(loaded[0].classes_)
        _check(sorted(meta) == ["coef", "intercept"] and meta["coef"].shape == (k, k * len(loaded))
               and meta["intercept"].shape == (k,), folder / META_FILE,
               f"must hold coef ({k}, {k * len(loaded)}) and intercept ({k},)")
    _check([str(c) for c in config.get("classes", [])] == loaded[0].class_names, path,
           "the classes do not match the members'")
    try:
        return cls(loaded, kind, config["weights"], meta, config.get("info"))
    except ValueError as e:
        raise ModelFolderError(f"{folder}: {e}") from None
