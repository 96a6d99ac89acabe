"""A feature's cache identity: file bytes, model name, weights, preprocessing (and its version),
view and engine precision. A change of any one part must miss the cache; nothing else may.

The first tests pin the key scheme itself (fast, no model); the last ones go through
``extract_features`` with a real encoder and count what was computed and what came from the cache.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from wordsight.encoders import get_config, load_model
from wordsight.features import FeatureCache, extract_features
from wordsight.features.cache import content_hash, feature_key

PRE_FIELDS = {"input_size": 200, "resize_size": 230, "resize_mode": "exact", "interpolation": "bilinear",
              "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


def test_fingerprint_is_name_and_hash_of_preprocessing_and_version():
    """Protects the preprocessing version in the cache key: the fingerprint is written out here
    from the documented parts (name, preprocessing, PREPROCESS_VERSION)."""
    import wordsight.encoders.config as config_module

    cfg = get_config("efficientnet-lite0")
    pre = {k: getattr(cfg, k) for k in PRE_FIELDS}
    blob = json.dumps({"name": cfg.name, "pre": pre, "v": config_module.PREPROCESS_VERSION}, sort_keys=True)
    assert cfg.fingerprint == f"efficientnet-lite0@{hashlib.sha256(blob.encode()).hexdigest()[:12]}"
    assert cfg.preprocessing() == pre


def test_preprocess_version_changes_the_fingerprint(monkeypatch):
    import wordsight.encoders.config as config_module

    before = get_config("efficientnet-lite0").fingerprint
    monkeypatch.setattr(config_module, "PREPROCESS_VERSION", config_module.PREPROCESS_VERSION + 1)
    assert get_config("efficientnet-lite0").fingerprint != before


@pytest.mark.parametrize("field, value", list(PRE_FIELDS.items()))
def test_each_preprocessing_field_changes_the_fingerprint(field, value):
    cfg = get_config("efficientnet-lite0")
    assert dataclasses.replace(cfg, **{field: value}).fingerprint != cfg.fingerprint


def test_fields_that_do_not_change_the_features_keep_the_fingerprint():
    cfg = get_config("efficientnet-lite0")
    same = dataclasses.replace(cfg, licence="other", install_hint="pip install something", weight_source="elsewhere")
    assert same.fingerprint == cfg.fingerprint
    assert get_config("mobilenetv2").fingerprint != cfg.fingerprint


def test_feature_key_joins_content_fingerprint_and_view():
    data = b"\x89PNG fake bytes"
    assert content_hash(data) == hashlib.sha256(data).hexdigest()
    keys = {feature_key(content_hash(data), "m@1", ""), feature_key(content_hash(data + b"!"), "m@1", ""),
            feature_key(content_hash(data), "m@2", ""), feature_key(content_hash(data), "m@1", "invert-v1")}
    assert len(keys) == 4
    assert feature_key("abc", "m@1", "v") == "abc|m@1|v"


def test_feature_cache_round_trips_arrays_and_counts(tmp_path):
    cache = FeatureCache(tmp_path / "c")
    a = {"embedding": np.arange(6, dtype=np.float32).reshape(2, 3)}
    cache.put_many({"k1": a, "k2": {"embedding": np.ones(3, np.float32)}})
    got = FeatureCache(tmp_path / "c").get_many(["k1", "missing", "k2"])  # a second handle, same file
    assert sorted(got) == ["k1", "k2"] and len(cache) == 2
    np.testing.assert_array_equal(got["k1"]["embedding"], a["embedding"])
    cache.put_many({"k1": {"embedding": np.zeros(3, np.float32)}})  # replaced, not duplicated
    assert len(cache) == 2 and cache.get_many(["k1"])["k1"]["embedding"].sum() == 0


def _png(path, seed, size=40):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)


@pytest.fixture
def two_images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    _png(folder / "a.png", 1)
    _png(folder / "b.png", 2)
    return folder


def counts(fs):
    return fs.computed, fs.cached


def test_each_part_of_a_features_identity_misses_the_cache(two_images, tmp_path, monkeypatch):
    from wordsight.features.views import get_view

    cache = FeatureCache(tmp_path / "cache")
    run = lambda **kw: extract_features(two_images, cache=cache, quiet=True, engine="torch", batch_size=4, **kw)  # noqa: E731
    assert counts(run()) == (2, 0)
    assert counts(run()) == (0, 2)  # nothing changed: all from the cache
    # file bytes: one image changes by one pixel
    img = np.asarray(Image.open(two_images / "a.png")).copy()
    img[0, 0, 0] ^= 1
    Image.fromarray(img).save(two_images / "a.png")
    assert counts(run()) == (1, 1)
    # model name
    assert counts(run(model="mobilenetv2")) == (2, 0)
    # each view, under its own key
    for name in ("light-background", "invert"):
        view, key = get_view(name)
        assert counts(run(view=view, view_key=key)) == (2, 0), name
        assert counts(run(view=view, view_key=key)) == (0, 2), name
    # the preprocessing version (a fresh encoder object, so that no runner keeps the old key)
    import wordsight.encoders.config as config_module

    monkeypatch.setattr(config_module, "PREPROCESS_VERSION", config_module.PREPROCESS_VERSION + 1)
    assert counts(run(model=load_model("efficientnet-lite0"))) == (2, 0)


def test_other_weights_under_the_same_name_miss_the_cache(two_images, tmp_path):
    """Protects the weights' part of the key: an encoder object whose weights differ from the
    packaged ones (fine-tuned, perturbed) never reads the packaged model's features."""
    import torch

    cache = FeatureCache(tmp_path / "cache")
    packaged = extract_features(two_images, model="efficientnet-lite0", cache=cache, quiet=True, engine="torch",
                                batch_size=4)
    tuned = copy.deepcopy(load_model("efficientnet-lite0"))
    with torch.no_grad():
        p = next(p for n, p in tuned.named_parameters() if p.ndim == 4)
        p.mul_(1.5)
    fs = extract_features(two_images, model=tuned, cache=cache, quiet=True, engine="torch", batch_size=4)
    assert counts(fs) == (2, 0)
    assert not np.allclose(fs.embeddings, packaged.embeddings)
    again = extract_features(two_images, model=tuned, cache=cache, quiet=True, engine="torch", batch_size=4)
    assert counts(again) == (0, 2)
    np.testing.assert_array_equal(again.embeddings, fs.embeddings)


def test_int8_and_fp32_runners_never_share_keys():
    from wordsight.features.engines.runners import OnnxRunner, onnx_available

    if not onnx_available():
        pytest.skip("onnx/onnxruntime not installed (pip install 'wordsight[fast]')")
    from wordsight.features.engines.onnx_cache import fp32_model

    enc = load_model("efficientnet-lite0")
    path = fp32_model(enc)
    fp32 = OnnxRunner(path, enc.config, enc.preprocess, precision="fp32")
    int8 = OnnxRunner(path, enc.config, enc.preprocess, precision="int8")
    assert fp32.fingerprint == enc.config.fingerprint
    assert feature_key("h", int8.fingerprint, "") != feature_key("h", fp32.fingerprint, "")


# Written down once (wordsight 2026-11, PREPROCESS_VERSION 1) from the published preprocessing of
# each packaged model: TF-style [-1, 1] input for EfficientNet-Lite (mean 127/255, std 128/255,
# resize to size / 0.875, bicubic) and torchvision's ImageNet statistics for MobileNetV2. A change
# here changes every cache key and makes every saved model refuse to load: update on purpose only.
PACKAGED = {
    "efficientnet-lite0": (224, 256, "bicubic", (127 / 255,) * 3, (128 / 255,) * 3, "efficientnet-lite0@e3d24f545290"),
    "efficientnet-lite1": (240, 274, "bicubic", (127 / 255,) * 3, (128 / 255,) * 3, "efficientnet-lite1@c5d65bd2265c"),
    "efficientnet-lite2": (260, 297, "bicubic", (127 / 255,) * 3, (128 / 255,) * 3, "efficientnet-lite2@a44163144a82"),
    "mobilenetv2": (224, 256, "bilinear", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "mobilenetv2@a3ce3585b6cd"),
}


@pytest.mark.parametrize("name", sorted(PACKAGED))
def test_packaged_encoders_preprocessing_and_fingerprint_are_pinned(name):
    size, resize, interp, mean, std, fingerprint = PACKAGED[name]
    cfg = get_config(name)
    assert cfg.preprocessing() == {"input_size": size, "resize_size": resize, "resize_mode": "shorter",
                                   "interpolation": interp, "mean": pytest.approx(mean), "std": pytest.approx(std)}
    assert cfg.fingerprint == fingerprint


def test_text_model_config_has_no_image_preprocessing():
    cfg = get_config("minilm")
    assert (cfg.modality, cfg.dim, cfg.input_size, cfg.resize_size, cfg.has_imagenet_head) == ("text", 384, 0, 0, False)
    assert cfg.fingerprint == "minilm@a9db5096cdef" and cfg.available() is True


def test_encoder_config_is_immutable():
    cfg = get_config("efficientnet-lite0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.input_size = 300


def test_feature_cache_file_lives_in_its_folder_made_on_demand(tmp_path):
    cache = FeatureCache(tmp_path / "a" / "b" / "c")
    assert cache.path == tmp_path / "a" / "b" / "c" / "features.sqlite" and cache.path.exists()
    assert len(cache) == 0


def test_open_cache_and_the_in_memory_cache(tmp_path):
    from wordsight.features.cache import MemoryCache, open_cache

    mem = open_cache(False)
    assert isinstance(mem, MemoryCache) and mem.root is None and len(mem) == 0
    mem.put_many({"k": {"e": np.ones(2, np.float32)}})
    assert list(mem.get_many(["k", "other"])) == ["k"] and len(mem) == 1
    disk = open_cache(tmp_path / "d")
    assert type(disk) is FeatureCache and disk.root == tmp_path / "d"
    assert open_cache(disk) is disk
