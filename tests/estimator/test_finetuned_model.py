"""A fine-tuned encoder in use: its own fingerprint (its features never mix with the frozen
encoder's in the cache), its weights in the saved model's folder, loaded by predict, the CLI and
the ONNX export. The "fine-tuned" weights here are the packaged ones with the last block moved:
what is tested is the plumbing, not the training (tests/training/test_finetune.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from wordsight.estimator.heads import LogisticHead

BASE = "efficientnet-lite0"


@pytest.fixture(scope="module")
def tuned():
    """(name, module) of an encoder whose last block differs from the packaged one."""
    from wordsight.encoders import create
    from wordsight.encoders.finetuned import register_module

    enc = create(BASE).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for n, p in enc.named_parameters():
            if "_blocks.15." in n:
                p.add_(0.05 * torch.randn_like(p))
    return register_module(BASE, enc), enc


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from skimage import data

    p = tmp_path_factory.mktemp("ft-photo") / "cat.png"
    Image.fromarray(data.chelsea()).save(p)
    return p


def test_the_same_image_gets_other_cache_keys_and_other_features(tuned, photo, tmp_path):
    from wordsight.encoders import get_config
    from wordsight.encoders.onnx import weights_digest
    from wordsight.encoders.preprocess import preprocess
    from wordsight.features import extract_features
    from wordsight.features.cache import content_hash, feature_key
    from wordsight.features.engines.batch import EmbedBatch

    name, module = tuned
    assert name == f"ft:{BASE}@{weights_digest(module)}"
    frozen, ft = get_config(BASE), get_config(name)
    assert ft.preprocessing() == frozen.preprocessing() and ft.fingerprint != frozen.fingerprint
    data = photo.read_bytes()
    keys = {feature_key(content_hash(data), EmbedBatch(m, engine="torch").fingerprint) for m in (BASE, name)}
    assert len(keys) == 2

    cache = tmp_path / "cache"
    fa = extract_features([str(photo)], BASE, cache=cache, engine="torch", batch_size=1, quiet=True)
    fb = extract_features([str(photo)], name, cache=cache, engine="torch", batch_size=1, quiet=True)
    assert fa.computed == fb.computed == 1  # the frozen entry is not a hit for the tuned encoder
    a, b = fa.embeddings, fb.embeddings
    with torch.no_grad():  # the fine-tuned module itself, on the same preprocessed pixels
        want = module(torch.from_numpy(preprocess(Image.open(photo), ft)[None]))["embedding"].numpy()
    np.testing.assert_allclose(b, want, rtol=1e-4, atol=1e-4)
    assert np.abs(a - b).max() > 1e-2  # the frozen encoder's features are not served for the tuned one
    again = extract_features([str(photo)], name, cache=cache, engine="torch", batch_size=1, quiet=True)
    assert again.cached == 1 and again.computed == 0
    np.testing.assert_array_equal(again.embeddings, b)


def test_saved_model_carries_the_weights_and_reloads_them(tuned, stripes, photo, tmp_path):
    from wordsight import clear_caches
    from wordsight.encoders import finetuned
    from wordsight.estimator import Classifier

    name, _ = tuned
    clf = Classifier(encoders=(name,), head=LogisticHead(C=1.0)).fit(stripes)
    folder = tmp_path / "model"
    clf.save(folder)
    config = json.loads((folder / "config.json").read_text())
    entry = config["encoders"][0]
    weights = entry["weights"]
    assert entry["name"] == name and weights == f"encoder-{name.rsplit('@', 1)[1]}.safetensors"
    assert weights in config["files"] and (folder / weights).is_file()
    images = [str(p) for p in sorted(stripes.rglob("*.png"))[:3]] + [str(photo)]
    want = clf.predict_proba(images)

    # a new process's view: nothing registered, nothing cached
    finetuned._weights.clear()
    clear_caches()
    with pytest.raises(Exception, match="not loaded in this process"):
        Classifier(encoders=(name,), head=LogisticHead(C=1.0)).fit(stripes)
    loaded = Classifier.load(folder)
    np.testing.assert_allclose(loaded.predict_proba(images), want, atol=1e-5)


def test_cli_fit_finetune_then_predict_and_export(stripes, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    import importlib.util

    from wordsight.cli import main
    from wordsight.estimator import Classifier

    out = tmp_path / "model"
    assert main(["fit", str(stripes), "--out", str(out), "--finetune", "last-blocks", "--finetune-epochs", "1",
                 "--finetune-batch-size", "4", "--finetune-blocks", "1", "--C", "1", "--fusion", "image",
                 "--quiet"]) == 0  # image fusion: exported below (the few-shot default, the prior, is not)
    err = capsys.readouterr().err
    assert "fine-tuned efficientnet-lite0 (last-blocks" in err and "2 steps, 1 epochs" in err, err
    assert not (out / "finetune-checkpoint").exists()  # removed once the model is saved
    config = json.loads((out / "config.json").read_text())
    assert config["encoders"][0]["name"].startswith("ft:efficientnet-lite0@")
    images = [str(p) for p in sorted(stripes.rglob("*.png"))]
    assert main(["predict", str(out), *images[:2], "--out", str(tmp_path / "p.json")]) == 0
    records = json.loads((tmp_path / "p.json").read_text())
    clf = Classifier.load(out)
    assert [r["predicted"] for r in records] == [str(c) for c in clf.predict(images[:2])]

    assert main(["export", str(out), "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    spec = importlib.util.spec_from_file_location("ft_runner", tmp_path / "onnx" / "runner.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    got = mod.Pipeline(tmp_path / "onnx", threads=2).predict_proba(images)
    np.testing.assert_allclose(got, clf.predict_proba(images), atol=2e-4)
