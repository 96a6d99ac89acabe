"""Saved models: JSON + safetensors, identical predictions after loading, damage refused."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from wordsight.estimator import Classifier, ModelFolderError
from wordsight.estimator.heads import LogisticHead
from wordsight.storage import canonical as _canonical


@pytest.fixture(scope="module")
def saved(fashion_blocks, tmp_path_factory):
    train, _ = fashion_blocks
    clf = Classifier(fusion="prior", head=LogisticHead(C=0.1)).fit(train)
    folder = tmp_path_factory.mktemp("model")
    clf.save(folder)
    return clf, folder


def _copy(folder, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(folder, dst)
    return dst


def test_round_trip_predicts_identically(saved, fashion_blocks, fashion_folder):
    clf, folder = saved
    _, test = fashion_blocks
    back = Classifier.load(folder)
    np.testing.assert_array_equal(back.predict_proba(test), clf.predict_proba(test))
    assert back.class_names == clf.class_names
    assert back.prior_mix_ == clf.prior_mix_
    assert back.prior_.view_ == clf.prior_.view_
    assert back.fusion_name == "prior" and back.get_params()["fusion__weight"] == "auto"
    # and on files, through feature extraction
    files = [str(p) for p in sorted((fashion_folder / "test").rglob("*.png"))[:5]]
    np.testing.assert_array_equal(back.predict(files), clf.predict(files))


def test_folder_holds_json_and_safetensors_only(saved):
    _, folder = saved
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    prior = ["zero_shot/conse/class_embeddings.safetensors", "zero_shot/conse/zeroshot.json",
             "zero_shot/linear/class_embeddings.safetensors", "zero_shot/linear/zeroshot.json",
             "zero_shot/pipeline.json"]
    assert files == ["calibration.safetensors", "config.json", "head.safetensors", "prior_probe.safetensors"] + prior
    config = json.loads((folder / "config.json").read_text())
    assert config["classes"][:2] == ["Ankle boot", "Bag"]
    assert config["encoders"][0]["name"] == "efficientnet-lite0"
    assert config["encoders"][0]["preprocessing"]["input_size"] == 224
    assert config["head"]["name"] == "logistic" and config["head"]["info"]["C"] == 0.1
    assert set(config["files"]) == {"calibration.safetensors", "head.safetensors", "prior_probe.safetensors", *prior}
    assert config["prior"]["learner"] == "probe" and config["prior"]["probe"]["file"] == "prior_probe.safetensors"
    assert config["prior"]["view"] == "light-background"  # Fashion-MNIST: light garments on black
    assert all(len(v) == 64 for v in config["files"].values())
    for p in folder.rglob("*"):
        if p.is_file():
            assert not p.read_bytes().startswith(b"\x80"), f"{p} looks like a pickle"


def _flip_a_byte(data: bytes) -> bytes:
    out = bytearray(data)
    out[-5] ^= 0xFF
    return bytes(out)


@pytest.mark.parametrize("damage, message", [
    (_flip_a_byte, "head.safetensors: checksum mismatch"),
    (lambda data: data[: len(data) // 2], "modified or truncated"),
], ids=["modified", "truncated"])
def test_damaged_weights_are_refused(saved, tmp_path, damage, message):
    _, folder = saved
    dst = _copy(folder, tmp_path)
    (dst / "head.safetensors").write_bytes(damage((dst / "head.safetensors").read_bytes()))
    with pytest.raises(ModelFolderError, match=message):
        Classifier.load(dst)


def test_edited_config_is_refused(saved, tmp_path):
    _, folder = saved
    dst = _copy(folder, tmp_path)
    config = json.loads((dst / "config.json").read_text())
    config["classes"][0], config["classes"][1] = config["classes"][1], config["classes"][0]
    (dst / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="config was edited"):
        Classifier.load(dst)
    (dst / "config.json").write_text("{\"format\": ")
    with pytest.raises(ModelFolderError, match="not valid JSON"):
        Classifier.load(dst)


def test_incompatible_folders_are_refused(saved, tmp_path):
    _, folder = saved
    dst = _copy(folder, tmp_path)
    config = json.loads((dst / "config.json").read_text())
    config.pop("config_sha256")

    def write(c):
        c = dict(c)
        c["config_sha256"] = _canonical(c)
        (dst / "config.json").write_text(json.dumps(c))

    write({**config, "format_version": 99})
    with pytest.raises(ModelFolderError, match="newer than this wordsight reads"):
        Classifier.load(dst)
    enc = dict(config["encoders"][0], fingerprint="efficientnet-lite0@000000000000")
    write({**config, "encoders": [enc]})
    with pytest.raises(ModelFolderError, match="preprocesses differently"):
        Classifier.load(dst)
    enc = dict(config["encoders"][0], name="no-such-encoder")
    write({**config, "encoders": [enc]})
    with pytest.raises(ModelFolderError, match="not available here"):
        Classifier.load(dst)
    (dst / "config.json").unlink()
    with pytest.raises(ModelFolderError, match="not a saved wordsight model"):
        Classifier.load(dst)
    with pytest.raises(ModelFolderError, match="not a folder"):
        Classifier.load(tmp_path / "nothing")


def test_a_folder_saved_by_the_previous_version_still_loads(saved, fashion_blocks, tmp_path):
    """0.x saved the prior as ``zero_shot/prior.json`` (plus a ``text_map/`` folder), mixed in with
    a weight, and had no probe file: such a folder loads, and predicts with its mixing weights."""
    import hashlib

    from wordsight._util.numerics import log_softmax, softmax

    clf, folder = saved
    _, test = fashion_blocks
    old = _copy(folder, tmp_path)
    meta = json.loads((old / "zero_shot" / "pipeline.json").read_text())
    (old / "zero_shot" / "pipeline.json").unlink()
    (old / "zero_shot" / "prior.json").write_text(json.dumps({"encoder": meta["encoder"], "view": meta["view"],
                                                              "ways": meta["ways"]}))
    (old / "prior_probe.safetensors").unlink()
    config = json.loads((old / "config.json").read_text())
    config.pop("config_sha256")
    for key in ("learner", "probe"):
        config["prior"].pop(key)
    config["prior"].update(weight=0.75, temperature=2.0, head_temperature=0.5)
    config["files"] = {p.relative_to(old).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                       for p in sorted(old.rglob("*")) if p.is_file() and p.name != "config.json"}
    config["config_sha256"] = _canonical(config)
    (old / "config.json").write_text(json.dumps(config))
    back = Classifier.load(old)
    assert back.state_.probe is None and back.prior_.view_ == meta["view"]
    head = back.head_.logits(back.fuse(test).astype(np.float64))
    want = softmax(log_softmax(0.5 * head) + 0.75 * log_softmax(2.0 * back.prior_log_proba(test)))
    np.testing.assert_allclose(back.predict_proba(test), want, atol=1e-12)
    np.testing.assert_allclose(back.prior_log_proba(test), clf.prior_log_proba(test), atol=1e-12)
