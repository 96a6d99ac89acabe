"""The local engine: ONNX Runtime equals torch, exports are cached, the batch callable, tiny images.
(OpenVINO and the auto choice: test_openvino.py; the bf16/int8 gate: test_quality_gate.py.)"""
import os

import numpy as np
import pytest

from wordsight.encoders import load_model
from wordsight.features import extract_features
from wordsight.features.engines import ATOL, RTOL, EmbedBatch, TorchRunner, fp32_model, make_runner
from wordsight.features.engines.onnx_cache import model_dir

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def torch_features(mixed_folder, tmp_path_factory):
    cache = tmp_path_factory.mktemp("torch-cache")
    return cache, extract_features(mixed_folder, engine="torch", cache=cache, quiet=True)


def test_onnx_equals_torch_and_shares_their_cache(mixed_folder, torch_features):
    cache, ref = torch_features
    assert len(ref.samples) == 9 and [os.path.basename(p.path) for p in ref.failures] == ["broken.jpg"]
    onnx = extract_features(mixed_folder, engine="onnx", cache=False, quiet=True)
    assert onnx.paths == ref.paths and onnx.computed == 9
    np.testing.assert_allclose(onnx.embeddings, ref.embeddings, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(onnx.arrays["logits"], ref.arrays["logits"], rtol=RTOL, atol=ATOL)
    assert (onnx.probabilities.argmax(1) == ref.probabilities.argmax(1)).all()
    # fp32 ONNX agrees with torch within tolerance, so it reads torch's cache entries
    again = extract_features(mixed_folder, engine="auto", cache=cache, quiet=True)
    assert again.cached == 9 and again.computed == 0


def test_export_is_cached_under_wordsight_cache_by_fingerprint():
    enc = load_model("efficientnet-lite0")
    path = fp32_model(enc)
    assert path.is_relative_to(os.environ["WORDSIGHT_CACHE"]) and path.exists()
    stamp = path.stat().st_mtime_ns
    runner = make_runner("efficientnet-lite0", "auto")
    assert runner.engine in ("onnx", "openvino") and runner.path == path and path.stat().st_mtime_ns == stamp
    assert runner.fingerprint == enc.config.fingerprint
    assert model_dir(enc) != model_dir(load_model("mobilenetv2"))


def test_torch_runner_channels_last_same_numbers(cat_image):
    enc = load_model("mobilenetv2")
    x = enc.preprocess(cat_image)[None]
    plain = enc.encode_arrays(x)
    fast = TorchRunner(enc)(x)
    np.testing.assert_allclose(fast["embedding"], plain["embedding"], rtol=1e-4, atol=1e-5)
    assert enc.config.fingerprint == TorchRunner(enc).fingerprint


def test_batch_callable_dict_in_dict_out(mixed_folder, torch_features):
    _, ref = torch_features
    fn = EmbedBatch("efficientnet-lite0", cache=False)
    paths = ref.paths[:3] + [str(mixed_folder / "coffee" / "broken.jpg")]
    data = open(ref.paths[3], "rb").read()
    out = fn({"path": np.array(paths + ["upload.jpg"], dtype=object),
              "bytes": np.array([None] * 4 + [data], dtype=object),
              "label": np.array(["a", None, "c", "d", "e"], dtype=object),
              "id": np.arange(5)})
    assert list(out["status"][:3]) == ["ok"] * 3 and out["status"][3].startswith("error: ")
    assert out["status"][4] == "ok" and list(out["id"]) == [0, 1, 2, 3, 4]
    assert list(out["label"]) == ["a", None, "c", "d", "e"]
    assert out["embedding"].shape == (5, 1280) and np.isnan(out["embedding"][3]).all()
    np.testing.assert_allclose(out["embedding"][[0, 1, 2, 4]], ref.embeddings[:4], rtol=RTOL, atol=ATOL)
    assert out["logits"].shape == (5, 1000)


def test_tiny_images_run_at_the_small_input_size(mixed_folder):
    from wordsight.features.engines.batch import SMALL_INPUT

    tiny, photo = str(mixed_folder / "cat" / "tiny.png"), str(mixed_folder / "cat" / "0.jpg")
    fn = EmbedBatch("efficientnet-lite0", cache=False)
    assert fn.small_config().input_size == SMALL_INPUT == 160
    full = extract_features([tiny, photo], cache=False, quiet=True, small_input=None)
    auto = extract_features([tiny, photo], cache=False, quiet=True)
    x, err = fn.decode(open(tiny, "rb").read(), fn.small_config())
    assert err is None and x.shape == (3, 160, 160)
    np.testing.assert_allclose(auto.embeddings[1], full.embeddings[1], rtol=RTOL, atol=ATOL)  # photo: unchanged
    assert not np.allclose(auto.embeddings[0], full.embeddings[0], atol=1e-2)  # tiny: its own input size
    keys = fn.prepare(open_source_samples([tiny])).keys  # [the keys of each view of each sample]
    assert keys[0][0].endswith("|px160")


def open_source_samples(paths):
    from wordsight.io.sources import open_source

    return open_source(paths).samples
