"""PatchCore (issue 23): the neighbour search (faiss and numpy agree, and agree with scikit-learn),
the greedy k-center coreset against a by-hand loop, the image score and heatmap recomputed from
the saved bank, and the map pointing at a pasted defect. Real Fashion-MNIST images, the packaged CNN."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.distance import cdist

from wordsight.estimator.anomaly import AnomalyDetector
from wordsight.estimator.anomaly.neighbours import has_faiss, nearest
from wordsight.estimator.anomaly.patchcore import greedy_coreset
from wordsight.estimator.anomaly.patches import GRID


@pytest.fixture(scope="module")
def trouser_pc(fashion_folder):
    return AnomalyDetector(method="patchcore", coreset=0.05).fit(fashion_folder / "train" / "Trouser")


@pytest.mark.skipif(not has_faiss(), reason="faiss-cpu not installed")
def test_faiss_and_numpy_give_the_same_neighbours_as_sklearn(trouser_pc):
    from sklearn.neighbors import NearestNeighbors

    bank = trouser_pc.scorer_.bank
    rng = np.random.default_rng(0)
    queries = bank[rng.choice(len(bank), 50)] + rng.normal(0, 0.5, (50, bank.shape[1])).astype(np.float32)
    Df, If = nearest(bank, queries, 3, "faiss", batch=7)  # several batches
    Dn, In = nearest(bank, queries, 3, "numpy", batch=7)
    Ds, Is = NearestNeighbors(n_neighbors=3).fit(bank).kneighbors(queries)
    np.testing.assert_array_equal(If, In)
    np.testing.assert_array_equal(In, Is)
    np.testing.assert_allclose(Df, Ds, rtol=1e-4)
    np.testing.assert_allclose(Dn, Ds, rtol=1e-4)


def test_greedy_coreset_is_k_center_by_hand():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(300, 16)).astype(np.float32)  # under the projection width: no projection
    got = greedy_coreset(Z, 12, seed=3)
    D = cdist(Z, Z)
    want = [int(np.random.default_rng(3).integers(300))]
    for _ in range(11):
        want.append(int(np.argmax(D[:, want].min(1))))
    assert got.tolist() == want


def test_score_is_the_most_abnormal_patch_and_the_threshold_leave_one_image_out(trouser_pc, fashion_folder):
    bags = sorted((fashion_folder / "test" / "Bag").glob("*.png"))
    F, _ = trouser_pc.featurize_patches(bags)
    bank = trouser_pc.scorer_.bank
    patches = F.matrix.reshape(len(bags), GRID * GRID, -1)
    per_patch = np.stack([cdist(p, bank).min(1) for p in patches])
    np.testing.assert_allclose(trouser_pc.score_samples(bags), -per_patch.max(1), rtol=1e-4)
    np.testing.assert_allclose(trouser_pc.heatmaps_featurized(F).reshape(len(bags), -1),
                               per_patch / -trouser_pc.threshold_, rtol=1e-4)
    # 5% of the 6 normal images' leave-one-image-out scores: each patch's nearest bank patch of another image
    train = trouser_pc.scorer_._train.reshape(6, GRID * GRID, -1)
    owner = trouser_pc.scorer_._owner
    loo = [-np.where(owner[None] != i, cdist(p, bank), np.inf).min(1).max() for i, p in enumerate(train)]
    assert trouser_pc.threshold_ == pytest.approx(np.quantile(loo, 0.05), rel=1e-4)
    assert trouser_pc.scorer_.bank.shape == (120, 152)  # 5% of 6 x 400 patches; 40 + 112 channels


def test_the_heatmap_points_at_a_pasted_defect(trouser_pc, fashion_folder, tmp_path):
    src = sorted((fashion_folder / "test" / "Trouser").glob("*.png"))[0]
    arr = np.asarray(Image.open(src).convert("L")).copy()
    arr[2:10, 17:25] = 255  # a bright square in the top right, on or beside the trouser
    Image.fromarray(arr).save(tmp_path / "defect.png")
    F, pictures = trouser_pc.featurize_patches([src, tmp_path / "defect.png"], views=True)
    clean, bad = trouser_pc.heatmaps_featurized(F)
    r, c = np.unravel_index(np.argmax(bad), bad.shape)
    assert r < GRID // 2 and c >= GRID // 2  # the hottest patch is in the defect's quadrant
    assert bad.max() > 1.5 * clean.max()
    s_clean, s_bad = trouser_pc.score_featurized(F)
    assert s_bad < s_clean and pictures[0].shape == (160, 160, 3)  # 28-px images run at the small input


def test_saved_and_loaded_scores_and_maps_are_equal(trouser_pc, fashion_folder, tmp_path):
    trouser_pc.save(tmp_path / "pc")
    det = AnomalyDetector.load(tmp_path / "pc")
    imgs = sorted((fashion_folder / "test" / "Coat").glob("*.png"))
    assert (det.method, det.coreset, det.localises) == ("patchcore", 0.05, True)
    np.testing.assert_allclose(det.score_samples(imgs), trouser_pc.score_samples(imgs), rtol=1e-6)
    F = det.featurize(imgs)
    np.testing.assert_allclose(det.heatmaps_featurized(F), trouser_pc.heatmaps_featurized(F), rtol=1e-6)
    with pytest.raises(ValueError, match="heatmaps need method='patchcore'"):
        AnomalyDetector().heatmaps_featurized(F)
