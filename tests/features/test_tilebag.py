"""Tile bags (issue 24): ``tilebag:<grids>:<encoder>`` reads each tile as its own image through the
tile views' cache entries, side by side; the fusion normalises each tile; a multi-label Classifier
with the mil head reports the pooled formula over exactly those tiles (real EfficientNet-Lite0)."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy.special import expit, logsumexp

from wordsight.encoders import get_config
from wordsight.encoders.tilebag import instances
from wordsight.estimator import Classifier
from wordsight.estimator.fusion import make_fusion
from wordsight.features import extract_features
from wordsight.features.tilebag import extract_bag
from wordsight.features.views import tile_view
from wordsight.io.sources import open_source

ENC = "efficientnet-lite0"
BAG = f"tilebag:2:{ENC}"


def tiles_by_hand(src, grids):
    """Each tile view read on its own (the prototype's way), in the bag's order."""
    out = []
    for g in grids:
        for i in range(g * g):
            fn, key = tile_view(None, g, i)
            fs = extract_features(src, ENC, view=fn, view_key=key, quiet=True)
            assert fs.paths == src.paths
            out.append(fs.embeddings)
    return np.stack(out, 1)


def test_a_bag_is_its_tile_views_side_by_side_from_their_cache_entries(photo_folder):
    src = open_source(photo_folder)
    want = tiles_by_hand(src, (2, 3))  # fills the cache per tile view
    fs = extract_bag(src, f"tilebag:2,3:{ENC}", quiet=True)
    assert fs.model == f"tilebag:2,3:{ENC}" and fs.paths == src.paths and fs.failures == []
    assert fs.embeddings.shape == (8, 13 * 1280) and fs.computed == 0 and fs.cached == 13 * 8
    np.testing.assert_array_equal(fs.embeddings.reshape(8, 13, 1280), want)
    whole = extract_features(src, ENC, quiet=True).embeddings
    assert np.abs(fs.embeddings[:, :1280] - whole).max() > 0.1  # a tile is not the whole image
    cfg = get_config(f"tilebag:2,3:{ENC}")
    assert cfg.dim == 13 * 1280 and not cfg.has_imagenet_head and cfg.fingerprint != get_config(ENC).fingerprint
    assert instances(f"tilebag:2,3:{ENC}") == 13 and instances(BAG) == 4 and instances(ENC) == 1


def test_the_fusion_normalises_each_tile_in_numpy_and_torch():
    import torch

    rng = np.random.default_rng(0)
    emb = {ENC: rng.normal(size=(3, 1280)), BAG: rng.normal(size=(3, 4 * 1280)) * 5}
    fusion = make_fusion("image").bind([ENC, BAG])
    row = fusion.fuse(emb, None, 3)
    norms = np.linalg.norm(row[:, 1280:].reshape(3, 4, 1280), axis=2)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(row[:, :1280], axis=1), 1.0, atol=1e-5)
    t = fusion.fuse_torch({k: torch.from_numpy(v) for k, v in emb.items()}, None).numpy()
    np.testing.assert_allclose(t, row, atol=1e-6)
    layout = fusion.layout({ENC: 1280, BAG: 4 * 1280}, None)
    assert layout[1] == {"name": f"image:{BAG}", "start": 1280, "stop": 1280 + 4 * 1280, "instances": 4,
                         "computed": f"{BAG}'s 4 tiles' pooled embeddings side by side, each L2-normalised"}
    assert "instances" not in layout[0]


@pytest.mark.parametrize("name, match", [
    ("tilebag:5:efficientnet-lite0", "grids, increasing, each 2..4"),
    ("tilebag:3,2:efficientnet-lite0", "grids, increasing"),
    ("tilebag:2,2:efficientnet-lite0", "grids, increasing"),
    ("tilebag:2,3,4,4:efficientnet-lite0", "grids, increasing"),
    ("tilebag:2:", "tilebag:<grids"),
    ("tilebag:x:efficientnet-lite0", "tilebag:<grids"),
    ("tilebag:2:minilm", "not an image encoder"),
])
def test_a_bad_bag_name_is_refused_in_one_line(name, match):
    with pytest.raises(ValueError, match=match) as info:
        get_config(name)
    assert "\n" not in str(info.value)


def small_manifest(manifest, n, out):
    rows = list(csv.DictReader(open(manifest)))[:n]
    base = manifest.parent
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, ["path", "labels"])
        w.writeheader()
        for r in rows:
            w.writerow({"path": str(base / r["path"]), "labels": r["labels"]})
    return out


@pytest.fixture(scope="module")
def mil_tagger(mosaic_manifests, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mil-tagger")
    train = small_manifest(mosaic_manifests[0], 60, folder / "train.csv")
    clf = Classifier(encoders=(ENC, BAG), task="multi-label", head="mil").fit(train)
    clf.save(folder / "m")
    return clf, folder / "m"


def test_a_tagger_on_a_tile_bag_reports_the_pooled_formula_over_its_tiles(mil_tagger, mosaic_manifests):
    clf, folder = mil_tagger
    head = clf.state_.head
    assert head.info["bag"] == [1280, 4, 1280] and head.info["lam"] in (1e-5, 1e-4, 1e-3)
    assert set(head.info["cv_mean_ap"]) == {"1e-05", "0.0001", "0.001"}
    src = open_source(mosaic_manifests[1])
    g = extract_features(src, ENC, quiet=True).embeddings
    T = tiles_by_hand(src, (2,))
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    T = T / np.linalg.norm(T, axis=2, keepdims=True)
    a = head.arrays
    z = logsumexp(np.einsum("nkd,ld->nkl", T, a["W"]), axis=1) + g @ a["V"].T + a["b"]
    P = clf.predict_proba(src)
    np.testing.assert_allclose(P, expit(z), atol=1e-5)
    back = Classifier.load(folder)
    np.testing.assert_allclose(back.predict_proba(src), P, atol=1e-9)
    assert back.encoder_names == [ENC, BAG] and back.state_.feature_dims == {ENC: 1280, BAG: 4 * 1280}


def test_a_bag_decodes_each_image_once_and_equals_its_tile_views(photo_folder, decodes):
    """Cold (no cache): all 13 tiles of an image come from one decode (the multi-view read), and
    each tile is what extract_features reads through that tile's view."""
    paths = open_source(photo_folder).paths[:2]
    fs = extract_bag(paths, f"tilebag:2,3:{ENC}", cache=False, quiet=True)
    assert decodes.total() == 2 and fs.embeddings.shape == (2, 13 * 1280)
    fn, key = tile_view(None, 3, 4)  # the centre tile of the 3x3 split: the bag's 4 + 4th tile
    want = extract_features(paths, ENC, view=fn, view_key=key, cache=False, quiet=True).embeddings
    np.testing.assert_allclose(fs.embeddings[:, 8 * 1280:9 * 1280], want, rtol=1e-5, atol=1e-5)


def test_one_label_per_image_on_a_tile_bag_is_a_softmax_over_the_pooled_scores(photo_folder):
    from scipy.special import softmax

    clf = Classifier(encoders=(ENC, BAG), head="mil").fit(photo_folder)
    src = open_source(photo_folder)
    P = clf.predict_proba(src)
    F = clf.featurize(src)
    np.testing.assert_allclose(P, softmax(clf.state_.head.logits(F.matrix), axis=1), atol=1e-12)
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-12)
    assert clf.state_.head.info["bag"] == [1280, 4, 1280] and not clf.task_.label_sets
    assert clf.predict(src).tolist() == src.labels
