"""The anomaly detector's patch features (estimator.anomaly.patches.read_patches) decode each image
once for all its encoders where they decode it alike (features.engines.multi_view.MultiViewBatch,
as extract_blocks reads): each encoder's input is exactly EmbedBatch.decode_for_model's (the
per-encoder decode it replaced), the decodes are counted (real EfficientNet-Lite0/1, MobileNetV2)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wordsight.estimator.anomaly.patches import GRID, read_patches
from wordsight.features.engines.batch import EmbedBatch
from wordsight.features.engines.multi_view import MultiViewBatch
from wordsight.io.sources import Sample

LITE0, LITE1, MOBILE = "efficientnet-lite0", "efficientnet-lite1", "mobilenetv2"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A photo-sized JPEG, a PNG, a tiny PNG (small input size), a 1400x1040 JPEG (drafted to 1/4
    for a 256-px resize, to 1/2 for Lite1's 274 px) and a file that is no image."""
    from skimage import data

    d = tmp_path_factory.mktemp("patches")
    cat = Image.fromarray(data.chelsea()).convert("RGB")
    cat.resize((1200, 900)).save(d / "cat.jpg", quality=90)
    Image.fromarray(data.coffee()).convert("RGB").resize((300, 200)).save(d / "coffee.png")
    Image.fromarray(data.astronaut()).convert("RGB").resize((40, 30)).save(d / "tiny.png")
    cat.resize((1400, 1040)).save(d / "wide.jpg", quality=90)
    (d / "bad.jpg").write_text("I am not a picture")
    return [str(d / n) for n in ("cat.jpg", "coffee.png", "bad.jpg", "tiny.png", "wide.jpg")]


def _per_encoder(files, encoders) -> np.ndarray:
    """Each encoder's patches read on its own, their channels side by side in every patch (what one
    read per encoder gives)."""
    parts = [read_patches([Sample(p) for p in files], [e])[0] for e in encoders]
    return np.concatenate([z.reshape(len(z), GRID * GRID, -1) for z in parts], 2).reshape(len(parts[0]), -1)


def test_encoders_that_decode_alike_decode_each_image_once(files, decodes):
    Z, kept, failures, pictures = read_patches([Sample(p) for p in files], [LITE0, MOBILE], views=True)
    assert [decodes(p) for p in files] == [1, 1, 1, 1, 1]  # one decode for both encoders (bad.jpg: one try)
    assert [s.path for s in kept] == [files[i] for i in (0, 1, 3, 4)]
    assert [(f.path, f.reason) for f in failures] == [(files[2], "not a recognised image format")]
    assert Z.dtype == np.float32 and Z.shape == (4, GRID * GRID * ((40 + 112) + (32 + 96)))  # stride 8 + 16 each
    decodes.clear()
    want = _per_encoder(files, [LITE0, MOBILE])
    assert [decodes(p) for p in files] == [2] * 5  # the old way: one decode (or try) per encoder
    assert Z.tobytes() == want.tobytes()  # byte for byte
    assert [p.shape for p in pictures] == [(224, 224, 3), (224, 224, 3), (160, 160, 3), (224, 224, 3)]


def test_encoders_that_draft_a_jpeg_to_different_scales_decode_it_at_each(files, decodes):
    Z, kept, _, _ = read_patches([Sample(p) for p in files], [LITE0, LITE1])
    assert [decodes(p) for p in files] == [1, 1, 1, 1, 2]  # wide.jpg: 1/4 for Lite0, 1/2 for Lite1
    # the draft each decode asked: the tiny PNG at both small inputs' 183 px, wide.jpg at 256 and 274, the
    # others (bad.jpg's one try included) shared at the first encoder's 256
    assert sorted(decodes.drafts) == [183, 256, 256, 256, 256, 274]
    assert Z.tobytes() == _per_encoder(files, [LITE0, LITE1]).tobytes()


@pytest.mark.parametrize("encoders", [[LITE0, MOBILE], [LITE0, LITE1], [MOBILE, LITE1, LITE0]])
def test_each_encoders_input_is_its_own_decode_for_model(files, encoders):
    """Every input of the shared decode equals byte for byte what the encoder's own decode gives."""
    fns = [EmbedBatch(e, engine="torch") for e in encoders]
    reads = MultiViewBatch.of_models([(fn, [(None, "")]) for fn in fns])
    for p in files:
        data = open(p, "rb").read()
        got = reads.inputs(Sample(p), data)
        for fn, (x, err) in zip(fns, got, strict=True):
            want, why = fn.decode_for_model(data)
            assert err == why
            assert (x is None and want is None) or (x.dtype == want.dtype and x.tobytes() == want.tobytes())


def test_every_packaged_cnn_gives_its_stride_8_and_16_maps(files):
    """EfficientNet-Lite2 reads 260 px: its stride-16 map is 17 cells (ceil(260 / 16)), not 16.25."""
    import torch

    from wordsight.encoders import load_model
    from wordsight.estimator.anomaly.patches import patch_grid

    for name, side, channels in (("efficientnet-lite2", 260, 48 + 120), (LITE0, 224, 40 + 112), (LITE0, 160, 40 + 112),
                                 (MOBILE, 224, 32 + 96)):
        out = patch_grid(load_model(name), torch.zeros(1, 3, side, side))
        assert tuple(out.shape) == (1, channels, GRID, GRID), name
    Z, kept, _, _ = read_patches([Sample(files[1])], ["efficientnet-lite2"])
    assert Z.shape == (1, GRID * GRID * (48 + 120)) and np.isfinite(Z).all()
