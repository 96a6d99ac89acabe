"""Which tile bag a model's mil head pools (explain.tile_inputs.pooled_bag) when the row holds
several: the block of the fused row that starts where the head's bag starts and has its number of
instances, whatever the encoders' order. Fitted on small random feature blocks: no image is read."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from wordsight.estimator import Classifier
from wordsight.estimator.feature_blocks import FeatureBlocks
from wordsight.estimator.heads.mil import MILHead
from wordsight.explain.tile_inputs import bags_of, pooled_bag
from wordsight.io.sources import Sample

A, B = "tilebag:2:efficientnet-lite0", "tilebag:2:mobilenetv2"  # 4 tiles each: 4 x 1280, 4 x 1280
G = "efficientnet-lite0"
DIMS = {G: 1280, A: 4 * 1280, B: 4 * 1280, "tilebag:3:efficientnet-lite0": 9 * 1280}


def fitted(encoders, bag, pool="lse"):
    rng = np.random.default_rng(0)
    y = ["a", "b"] * 6
    blocks = FeatureBlocks([Sample(f"{i}.png", c) for i, c in enumerate(y)],
                           {e: rng.normal(size=(len(y), DIMS[e])).astype(np.float32) for e in encoders})
    clf = Classifier(encoders=tuple(encoders), head=MILHead(bag=bag, lam=1e-2, max_iter=5, pool=pool), calibration=None)
    return SimpleNamespace(model=clf.fit(blocks), encoder_names=list(encoders))


@pytest.mark.parametrize(("encoders", "bag", "want"), [
    ([G, A, B], [1280 + 4 * 1280, 4, 1280], B),  # two bags of 4 tiles: the one at the head's start
    ([G, A, B], [1280, 4, 1280], A),
    ([B, G, A], [0, 4, 1280], B),
    ([G, "tilebag:3:efficientnet-lite0", A], [1280 + 9 * 1280, 4, 1280], A),
])
def test_the_pooled_bag_is_the_block_where_the_heads_bag_starts(encoders, bag, want):
    subject = fitted(encoders, bag)
    assert pooled_bag(subject) == want
    assert bags_of(subject) == [e for e in encoders if e.startswith("tilebag:")]


def test_no_mil_head_no_pooled_bag():
    rng = np.random.default_rng(1)
    y = ["a", "b"] * 4
    blocks = FeatureBlocks([Sample(f"{i}.png", c) for i, c in enumerate(y)],
                           {A: rng.normal(size=(len(y), 4 * 1280)).astype(np.float32)})
    clf = Classifier(encoders=(A,), head="logistic", calibration=None).fit(blocks)
    assert pooled_bag(SimpleNamespace(model=clf, encoder_names=[A])) is None
    assert pooled_bag(SimpleNamespace(encoder_names=[A])) is None  # a bare encoder


def test_the_global_share_of_exactly_zero_terms(tmp_path):
    """A max-pooling mil head whose tile weights are zero scores every tile 0: the pooled term is
    exactly 0, so the global term is the whole logit (share 1); with the global weights zero too
    both terms are 0 and the share is 0 (no evidence either way)."""
    from PIL import Image

    from wordsight.explain import explain

    path = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(path)
    clf = fitted([G, A], [1280, 4, 1280], pool="max").model
    clf.head_.arrays["W"][:] = 0.0
    ev = explain(clf, str(path), method="tiles", target="a")[0].evidence["tiles"]
    assert ev["pooled"] == 0.0 and ev["global"] != 0.0 and ev["global_share"] == 1.0
    clf.head_.arrays["V"][:] = 0.0
    ev = explain(clf, str(path), method="tiles", target="a")[0].evidence["tiles"]
    assert ev["pooled"] == ev["global"] == 0.0 and ev["global_share"] == 0.0
