"""Every file of a saved model folder is verified on load, the prior's ``zero_shot/`` files
included, and a model saved under another preprocessing version is refused (as documented in
``models/persistence.py``: "refit the model").

The prior model is fitted on small made-up features (the prior's own reading of the images given
with them), so no image folder is needed; the real text model and encoder build the prior.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from wordsight.estimator import Classifier, ModelFolderError
from wordsight.estimator.feature_blocks import FeatureBlocks
from wordsight.estimator.fusion import ConcatFusion, PriorFusion
from wordsight.estimator.heads import KNNHead, LogisticHead
from wordsight.estimator.prior_mix import PriorMix
from wordsight.io.sources import Sample

ENC = "efficientnet-lite0"
NAMES = ["boot", "cup", "kite"]


@pytest.fixture(scope="module")
def prior_model(tmp_path_factory):
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 4)
    emb = (rng.normal(size=(3, 1280))[y] + rng.normal(size=(12, 1280))).astype(np.float32)
    logits = rng.normal(size=(12, 1000)) * 2
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    samples = [Sample(f"img{i}.png", NAMES[c]) for i, c in enumerate(y)]
    blocks = FeatureBlocks(samples, {ENC: emb}, probs, ENC, prior_features={(ENC, "plain"): (probs, emb)})
    blocks.prior_features[(ENC, "invert")] = (probs, emb)
    clf = Classifier(fusion=PriorFusion(view="invert", weight=0.5), head=LogisticHead(C=1.0)).fit(blocks)
    # as a weight chosen on held-out folds leaves them (a head temperature, the scores seen)
    clf.state_.fusion.mix_ = PriorMix(clf.prior_mix_.weight, clf.prior_mix_.temperature, 1.7,
                                      {"how": "leave-one-shot-out (2 folds)", "scores": {"0.0": {"accuracy": 0.5, "log_loss": 1.0}}})
    folder = tmp_path_factory.mktemp("prior-model") / "nested" / "model"  # parents made on demand
    clf.save(folder)
    return clf, blocks, folder


def saved_files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_saved_prior_model_round_trips(prior_model):
    clf, blocks, folder = prior_model
    back = Classifier.load(folder)
    np.testing.assert_array_equal(back.predict_proba(blocks), clf.predict_proba(blocks))
    assert back.prior_mix_ == clf.prior_mix_ and back.prior_mix_.weight == 0.5
    assert back.prior_mix_.head_temperature == 1.7 and back.prior_.view_ == "invert"
    assert any(f.startswith("zero_shot/") for f in saved_files(folder))
    clf.save(folder)  # saving again into the same folder replaces the model
    np.testing.assert_array_equal(Classifier.load(folder).predict_proba(blocks), clf.predict_proba(blocks))


def test_saved_config_holds_the_documented_fields(prior_model):
    import wordsight

    clf, _, folder = prior_model
    config = json.loads((folder / "config.json").read_text())
    assert set(config) == {"format", "format_version", "library_version", "params", "classes", "class_type", "encoders",
                           "task", "fusion", "fusion_params", "n_features_in", "text_dim", "probs_encoder", "head",
                           "prior", "calibration", "files", "config_sha256"}
    assert (config["library_version"], config["fusion"]) == (wordsight.__version__, "prior")
    assert config["class_type"].startswith("str")  # numpy's str_ for string labels
    assert (config["n_features_in"], config["text_dim"], config["probs_encoder"]) == (1280, None, ENC)
    assert "cache" not in config["params"] and config["params"]["fusion"] == "prior" and config["task"] == "single-label"
    assert config["fusion_params"] == {"view": "invert", "descriptions": None, "weight": 0.5, "method": "auto"}
    assert config["head"]["params"] == {"C": 1.0, "class_weight": None, "random_state": 0, "max_iter": 1000}
    assert config["prior"] == {"weight": 0.5, "temperature": clf.prior_mix_.temperature, "head_temperature": 1.7,
                               "scores": clf.prior_mix_.scores, "folder": "zero_shot", "view": "invert",
                               "zero_shot_method": "names", "text_model": "minilm", "learner": "mix"}
    assert config["head"]["name"] == "logistic" and config["head"]["arrays"] == ["coef", "intercept", "mean", "scale"]
    # out-of-fold scores of the 12 training rows (4 per class: 4 folds), kept for prediction sets and "unknown"
    assert config["calibration"] == {"file": "calibration.safetensors", "folds": 4, "n": 12, "method": "cross-conformal"}


def _flip_middle_byte(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0x01
    return bytes(out)


WEIGHT_FILES = ["head.safetensors", "calibration.safetensors", "zero_shot/pipeline.json", "zero_shot/conse/zeroshot.json",
                "zero_shot/conse/class_embeddings.safetensors", "zero_shot/linear/zeroshot.json",
                "zero_shot/linear/class_embeddings.safetensors"]


def test_every_file_of_a_prior_model_is_listed_with_its_checksum(prior_model):
    _, _, folder = prior_model
    config = json.loads((folder / "config.json").read_text())
    assert saved_files(folder) == sorted(["config.json", *WEIGHT_FILES])  # prior_weight=0.5: mixed, no probe
    assert sorted(config["files"]) == sorted(WEIGHT_FILES)


@pytest.mark.parametrize("name", WEIGHT_FILES)
def test_checksum_covers_every_file_including_zero_shot(prior_model, tmp_path, name):
    """Protects the integrity of each weight file: one changed bit anywhere is refused by name."""
    _, _, folder = prior_model
    dst = tmp_path / "m"
    shutil.copytree(folder, dst)
    (dst / name).write_bytes(_flip_middle_byte((dst / name).read_bytes()))
    with pytest.raises(ModelFolderError, match=f"{name}: checksum mismatch"):
        Classifier.load(dst)


@pytest.mark.parametrize("name", WEIGHT_FILES)
def test_a_missing_weight_file_is_refused_by_name(prior_model, tmp_path, name):
    _, _, folder = prior_model
    dst = tmp_path / "m"
    shutil.copytree(folder, dst)
    (dst / name).unlink()
    with pytest.raises(ModelFolderError, match=f"{name}: file not found"):
        Classifier.load(dst)


def test_a_swapped_zero_shot_folder_is_refused(prior_model, tmp_path):
    """A prior from another model (same file names, other contents) cannot be slipped in."""
    _, _, folder = prior_model
    dst = tmp_path / "m"
    shutil.copytree(folder, dst)
    meta = json.loads((dst / "zero_shot/conse/zeroshot.json").read_text())
    meta["classes"] = ["boot", "kite", "cup"]
    (dst / "zero_shot/conse/zeroshot.json").write_text(json.dumps(meta, indent=2))
    with pytest.raises(ModelFolderError, match="zero_shot/conse/zeroshot.json: checksum mismatch"):
        Classifier.load(dst)


def test_an_edited_config_is_refused(prior_model, tmp_path):
    _, _, folder = prior_model
    dst = tmp_path / "m"
    shutil.copytree(folder, dst)
    config = json.loads((dst / "config.json").read_text())
    config["prior"]["weight"] = 3.0
    (dst / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="config.json: checksum mismatch"):
        Classifier.load(dst)


def test_a_model_saved_under_an_older_preprocess_version_is_refused(prior_model, tmp_path, monkeypatch):
    """Protects the preprocessing version in the saved fingerprint: features computed by older
    preprocessing would not match the head, so loading says to refit."""
    import wordsight.encoders.config as config_module

    clf, _, _ = prior_model
    monkeypatch.setattr(config_module, "PREPROCESS_VERSION", config_module.PREPROCESS_VERSION - 1)
    clf.save(tmp_path / "old")
    monkeypatch.undo()
    with pytest.raises(ModelFolderError, match="efficientnet-lite0.*preprocesses differently.*refit the model"):
        Classifier.load(tmp_path / "old")
    Classifier.load(prior_model[2])  # the current version loads


def test_saved_format_and_config_checksum_scheme_are_pinned(prior_model):
    """The on-disk contract that older saved models rely on: format name and version, and
    config_sha256 = sha256 of the config without it, as compact JSON with sorted keys."""
    import hashlib

    _, _, folder = prior_model
    config = json.loads((folder / "config.json").read_text())
    assert (config["format"], config["format_version"]) == ("wordsight-classifier", 1)
    stored = config.pop("config_sha256")
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    assert stored == hashlib.sha256(blob).hexdigest()
    for name, digest in config["files"].items():
        assert digest == hashlib.sha256((folder / name).read_bytes()).hexdigest(), name


def test_a_newer_format_version_is_refused_with_the_upgrade_hint(prior_model, tmp_path):
    import hashlib

    _, _, folder = prior_model
    dst = tmp_path / "m"
    shutil.copytree(folder, dst)
    config = json.loads((dst / "config.json").read_text())
    config.pop("config_sha256")
    config["format_version"] = 2
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config["config_sha256"] = hashlib.sha256(blob).hexdigest()
    (dst / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="format version 2 is newer than this wordsight reads \\(1\\); upgrade"):
        Classifier.load(dst)


def test_a_model_fitted_on_feature_arrays_round_trips(tmp_path):
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(30, 5)), np.repeat(["a", "b", "c"], 10)
    X[y == "b"] += 2
    clf = Classifier(head=KNNHead(k=np.int64(3))).fit(X, y)  # numpy scalars
    clf.save(tmp_path / "arr")
    back = Classifier.load(tmp_path / "arr")
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert back.classes_.tolist() == ["a", "b", "c"] and back.head_.info == clf.head_.info
    assert back.pipeline_spec()["blocks"] == [{"name": "precomputed", "start": 0, "stop": 5}]
    config = json.loads((tmp_path / "arr" / "config.json").read_text())
    assert config["prior"] is None and config["encoders"] == [] and config["head"]["info"] == {"n_classes": 3, "k": 3}


def resign(folder, edit):
    """Apply ``edit`` to config.json and recompute its checksum (a deliberate, consistent edit)."""
    import hashlib

    config = json.loads((folder / "config.json").read_text())
    config.pop("config_sha256")
    edit(config)
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config["config_sha256"] = hashlib.sha256(blob).hexdigest()
    (folder / "config.json").write_text(json.dumps(config))


def test_older_prior_configs_without_new_fields_load_with_the_defaults(prior_model, tmp_path):
    """A model saved before the head temperature and the prior's view were recorded."""
    _, blocks, folder = prior_model
    dst = tmp_path / "m"
    shutil.copytree(folder, dst)

    def drop(config):
        del config["prior"]["head_temperature"], config["prior"]["view"]

    resign(dst, drop)
    back = Classifier.load(dst)
    # the head temperature defaults to 1; the view is the one the prior's own folder records
    assert back.prior_mix_.head_temperature == 1.0 and back.prior_.view_ == "invert"


@pytest.mark.parametrize("damage, message", [
    ("garbage_head", "head.safetensors: cannot read safetensors"),
    ("other_arrays", "head.safetensors: holds"),
    ("no_prior_json", "zero_shot: cannot load the language prior"),
])
def test_consistent_but_broken_folders_are_refused_by_name(prior_model, tmp_path, damage, message):
    """Checksums right (the config re-signed), contents wrong: each is still a one-line refusal."""
    import hashlib

    _, _, folder = prior_model
    dst = tmp_path / "m"
    shutil.copytree(folder, dst)
    if damage == "garbage_head":
        (dst / "head.safetensors").write_bytes(b"not safetensors at all")
        digest = hashlib.sha256(b"not safetensors at all").hexdigest()
        resign(dst, lambda c: c["files"].__setitem__("head.safetensors", digest))
    elif damage == "other_arrays":
        resign(dst, lambda c: c["head"].__setitem__("arrays", ["coef", "intercept"]))
    else:
        (dst / "zero_shot" / "pipeline.json").unlink()
        resign(dst, lambda c: c["files"].pop("zero_shot/pipeline.json"))
    with pytest.raises(ModelFolderError, match=message):
        Classifier.load(dst)


@pytest.mark.parametrize("content", ["[]", '{"format": "something-else"}'])
def test_a_config_of_another_kind_is_refused(tmp_path, content):
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(ModelFolderError, match="not a wordsight classifier config"):
        Classifier.load(tmp_path)


def test_concat_model_keeps_its_text_block_and_tuple_params(prior_model, tmp_path):
    _, blocks, _ = prior_model
    clf = Classifier(fusion=ConcatFusion(text_weight=0.5), head=LogisticHead(C=(0.1, 1.0))).fit(blocks)
    clf.save(tmp_path / "concat")
    back = Classifier.load(tmp_path / "concat")
    assert back.state_.text_dim == 384 and back.head.C == (0.1, 1.0) and back.encoders == ("efficientnet-lite0",)
    np.testing.assert_array_equal(back.predict_proba(blocks), clf.predict_proba(blocks))
    assert back.pipeline_spec()["blocks"][-1]["stop"] == 1280 + 384


def test_integer_classes_keep_their_numeric_order_through_a_round_trip(tmp_path):
    # twelve integer classes: as text, 10 and 11 would sort before 2 and every prediction would move
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(12), 4)
    X = rng.normal(size=(12, 8))[y] * 3 + rng.normal(size=(48, 8))
    clf = Classifier(head=LogisticHead(C=1.0)).fit(X, y)
    clf.save(tmp_path / "ints")
    back = Classifier.load(tmp_path / "ints")
    assert back.classes_.tolist() == list(range(12)) and np.issubdtype(back.classes_.dtype, np.integer)
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert back.predict(X).tolist() == clf.predict(X).tolist()
    assert (back.predict(X) == y).mean() > 0.9  # the labels themselves, not only agreement


def test_string_classes_that_look_like_numbers_keep_the_fitted_order(tmp_path):
    rng = np.random.default_rng(6)
    y = np.repeat(["2", "10", "b", "A"], 5)
    X = rng.normal(size=(4, 6))[np.repeat(np.arange(4), 5)] * 3 + rng.normal(size=(20, 6))
    clf = Classifier(head=LogisticHead(C=1.0)).fit(X, y)
    clf.save(tmp_path / "strs")
    back = Classifier.load(tmp_path / "strs")
    assert back.classes_.tolist() == clf.classes_.tolist() == ["10", "2", "A", "b"]
    assert back.predict(X).tolist() == clf.predict(X).tolist() == y.tolist()
