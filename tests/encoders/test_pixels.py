"""pixels-32: the image's own pixels as an encoder (no weights), checked against PIL and numpy."""
import numpy as np
import pytest
from PIL import Image

from wordsight import extract_features
from wordsight.encoders import get_config, list_models
from wordsight.estimator import Classifier
from wordsight.estimator.heads import LogisticHead
from wordsight.explain.api import gradcam_overlay


def _thumbnail(img: Image.Image) -> np.ndarray:
    """The expected embedding, computed here: shorter side to 32 (bicubic), centre 32 x 32,
    [0, 255] -> [-1, 1], channels first, flattened."""
    w, h = img.size
    s = 32 / min(w, h)
    nw, nh = max(32, round(w * s)), max(32, round(h * s))
    small = img.convert("RGB").resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - 32) // 2, (nh - 32) // 2
    arr = np.asarray(small.crop((left, top, left + 32, top + 32)), np.float32) / 255.0
    return ((arr - 0.5) / 0.5).transpose(2, 0, 1).reshape(-1)


def _random_image(w, h, seed, mode="RGB"):
    rng = np.random.default_rng(seed)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


def test_pixels_is_registered_without_weights_or_imagenet_head():
    assert "pixels-32" in list_models("pixels*")
    cfg = get_config("pixels-32")
    assert (cfg.dim, cfg.input_size, cfg.has_imagenet_head, cfg.modality) == (3072, 32, False, "image")
    assert cfg.available()


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_the_embedding_is_the_thumbnail_on_every_engine(tmp_path, engine):
    """A wide photo-sized image and a 28-px grey one: the tiny image is not upsampled to the CNNs'
    small-input size (the encoder has a fixed input), both equal the thumbnail computed here."""
    images = {"wide.png": _random_image(80, 48, 0), "tiny.png": _random_image(28, 28, 1, mode="L")}
    for name, img in images.items():
        img.save(tmp_path / name)
    fs = extract_features([str(tmp_path / n) for n in images], "pixels-32", engine=engine, cache=False, quiet=True)
    assert fs.embeddings.shape == (2, 3072) and fs.probabilities is None
    for row, img in zip(fs.embeddings, images.values()):
        np.testing.assert_allclose(row, _thumbnail(img), atol=1e-6)
    grey = fs.embeddings[1].reshape(3, 32, 32)
    np.testing.assert_array_equal(grey[0], grey[2])  # a grey image gives three equal planes


def test_a_classifier_on_pixels_learns_brightness_and_refuses_language_fusions(tmp_path):
    """Dark vs bright images: the pixel features separate them; the text block needs an ImageNet
    head, which pixels-32 does not have, and the error says so."""
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for i in range(12):
        label = "bright" if i % 2 else "dark"
        base = 200 if label == "bright" else 40
        arr = np.clip(base + rng.normal(0, 20, (36, 36, 3)), 0, 255).astype(np.uint8)
        p = tmp_path / f"{i}.png"
        Image.fromarray(arr).save(p)
        paths.append(str(p))
        labels.append(label)
    clf = Classifier(encoders=("pixels-32",), head=LogisticHead(C=1.0), quiet=True, cache=False).fit(paths, labels)
    assert list(clf.predict(paths)) == labels
    with pytest.raises(ValueError, match="ImageNet"):
        Classifier(encoders=("pixels-32",), fusion="text", quiet=True, cache=False).fit(paths, labels)
    # the report's heatmap: neither Grad-CAM nor rollout reaches a pixels model, LIME stands in
    out = gradcam_overlay(clf, paths[0], out=tmp_path / "maps")
    assert out.endswith("0.lime.png") and Image.open(out).size == (36, 36)


def test_a_model_with_pixels_beside_a_cnn_exports_to_onnx_with_the_same_probabilities(tmp_path):
    pytest.importorskip("onnxruntime")
    import importlib.util

    from wordsight.export import export_onnx

    rng = np.random.default_rng(3)
    paths, labels = [], []
    for i in range(8):
        arr = rng.integers(0, 256, (30 + i, 34, 3), dtype=np.uint8)
        arr[:, : 17 if i % 2 else 5] = 255  # a white band: wide in one class, narrow in the other
        p = tmp_path / f"{i}.png"
        Image.fromarray(arr).save(p)
        paths.append(str(p))
        labels.append(f"band{i % 2}")
    clf = Classifier(encoders=("efficientnet-lite0", "pixels-32"), head=LogisticHead(C=1.0), quiet=True, cache=False).fit(paths, labels)
    clf.save(tmp_path / "model")
    out = export_onnx(tmp_path / "model", tmp_path / "onnx", text=False)
    spec = importlib.util.spec_from_file_location("pixels_runner", out / "runner.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    pipe = runner.Pipeline(out)
    np.testing.assert_allclose(pipe.features(paths), clf.featurize(paths).matrix, atol=1e-5)
    np.testing.assert_allclose(pipe.predict_proba(paths), clf.predict_proba(paths), atol=1e-5)
