"""clip: and caption: encoders on tiny random models built here (plumbing, shapes, save/load path)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from wordsight.encoders import get_config, load_model
from wordsight.features import extract_features
from wordsight.text import ConceptBank
from wordsight.zeroshot import ZeroShotClassifier, describe_features, image_text_vectors, text_side


@pytest.fixture(scope="module")
def small_images(tmp_path_factory):
    root = tmp_path_factory.mktemp("joint-images")
    rng = np.random.default_rng(0)
    for label in ("red", "blue"):
        (root / label).mkdir()
        for i in range(2):
            arr = np.zeros((40, 48, 3), np.uint8)
            arr[..., 0 if label == "red" else 2] = 200
            arr += rng.integers(0, 40, arr.shape, dtype=np.uint8)
            Image.fromarray(arr).save(root / label / f"{i}.png")
    return root


def test_clip_encoder_is_an_image_and_a_text_encoder(tiny_clip_dir):
    from transformers import AutoTokenizer, CLIPModel

    name = f"clip:{tiny_clip_dir}"
    cfg = get_config(name)
    assert cfg.modality == "joint" and cfg.input_size == 32
    enc = load_model(name)
    assert enc.config.dim == 16 and enc.logit_scale == pytest.approx(np.exp(2.6592), rel=1e-3)
    texts = ["a cat", "a dog", "a truck here"]
    vecs = enc.encode(texts)
    assert vecs.shape == (3, 16) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    # the same numbers as calling transformers directly
    ref_model = CLIPModel.from_pretrained(tiny_clip_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_clip_dir)
    with torch.no_grad():
        ref = ref_model.get_text_features(**tok(texts, padding=True, return_tensors="pt"))
        ref = getattr(ref, "pooler_output", ref)
        ref = torch.nn.functional.normalize(ref, dim=-1).numpy()
        x = torch.from_numpy(enc.preprocess(Image.new("RGB", (50, 40), (200, 10, 10))))[None]
        img_ref = ref_model.get_image_features(pixel_values=x)
        img_ref = torch.nn.functional.normalize(getattr(img_ref, "pooler_output", img_ref), dim=-1).numpy()
    assert np.allclose(vecs, ref, atol=1e-5)
    assert np.allclose(enc.encode_arrays(x.numpy())["embedding"], img_ref, atol=1e-5)


def test_clip_zero_shot_and_description(tiny_clip_dir, small_images):
    name = f"clip:{tiny_clip_dir}"
    feats = extract_features(small_images, name, quiet=True)
    assert feats.embeddings.shape == (4, 16) and feats.probabilities is None
    assert text_side(name) == name
    X = image_text_vectors(feats, name)
    assert np.allclose(X, feats.embeddings / np.linalg.norm(feats.embeddings, axis=1, keepdims=True))
    clf = ZeroShotClassifier(["red", "blue"], method="templates", text_model=name).fit()
    assert clf.scale_ == pytest.approx(load_model(name).logit_scale)
    assert clf.class_texts_["red"][0] == "a photo of a red."
    means = np.stack([load_model(name).encode(clf.class_texts_[c]).mean(0) for c in ["red", "blue"]])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    assert np.allclose(clf.decision_function(X), X @ means.T, atol=1e-5)  # the model's own text tower
    z = clf.decision_function(X) * clf.scale_
    assert np.allclose(clf.predict_proba(X), np.exp(z) / np.exp(z).sum(1, keepdims=True), atol=1e-5)
    bank = ConceptBank.from_list(["cat", "dog", "truck"], text_model=name)
    assert bank.texts == "photo" and bank.embeddings.shape == (3, 16)
    lines = describe_features(feats, name, top=2, concepts=bank)
    assert len(lines) == 4 and all(line.startswith("resembles: ") and line.count("(") == 2 for line in lines)


def test_clip_prefix_rejects_image_only_models(tmp_path):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    ViTModel(ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                       image_size=32, patch_size=8)).save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\na\n")
    from transformers import BertTokenizer

    BertTokenizer(str(tmp_path / "vocab.txt")).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not a joint image-text model"):
        load_model(f"clip:{tmp_path}")


def test_caption_encoder_captions_and_embeds(tiny_caption_dir, small_images):
    name = f"caption:{tiny_caption_dir}"
    assert get_config(name).modality == "caption"
    enc = load_model(name)
    img = Image.open(next(small_images.glob("red/*.png")))
    caps = enc.caption([img, img])
    assert len(caps) == 2 and caps[0] == caps[1] and isinstance(caps[0], str)
    assert set(caps[0].split()) <= {"a", "photo", "of", "cat", "dog", "shoe", "bag", "on", "the", "grass", "red",
                                    "small", "with", "white", "background", "[UNK]", "[MASK]"}
    feats = extract_features(small_images, name, quiet=True)
    assert feats.embeddings.shape == (4, 384) and feats.arrays["caption_ids"].shape[0] == 4
    captions = describe_features(feats, name)
    # the cached token ids decode to the same captions; the embedding is MiniLM's of that caption
    direct = enc.caption([Image.open(p).convert("RGB") for p in feats.paths])
    assert captions == direct
    assert np.allclose(feats.embeddings, load_model("minilm").encode(captions), atol=1e-5)
    assert text_side(name) == "minilm"
    clf = ZeroShotClassifier(["red", "blue"], method="names").fit()
    assert clf.predict(image_text_vectors(feats, name)).shape == (4,)
