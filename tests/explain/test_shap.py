"""SHAP over superpixels: exact Shapley values when the budget covers every coalition, a bounded
number of model calls, and maps that pass the faithfulness check on the test photos."""
from itertools import combinations
from math import factorial

import numpy as np
import pytest
from PIL import Image

from wordsight.explain import deletion_check, explain
from wordsight.explain._pipeline import as_subject
from wordsight.explain.shapley import compose, shap_map
from wordsight.explain.superpixels import segments


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from skimage import data

    folder = tmp_path_factory.mktemp("shap-photos")
    paths = []
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        p = folder / f"{name}.png"
        Image.fromarray(getattr(data, name)()).save(p)
        paths.append(p)
    return paths


def exact_shapley(value, n: int) -> np.ndarray:
    """Shapley values by enumerating every coalition (the textbook formula)."""
    phi = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            w = factorial(size) * factorial(n - size - 1) / factorial(n)
            for coalition in combinations(others, size):
                phi[i] += w * (value(coalition + (i,)) - value(coalition))
    return phi


def test_kernel_shap_is_exact_when_the_budget_covers_every_coalition(photos):
    s = as_subject("efficientnet-lite0")
    view = s.read(photos[1])
    segs = segments(view.image, 6)
    n = int(segs.max()) + 1
    assert 3 <= n <= 8, n
    target = int(np.argmax(s.proba_views(view.image[None])[0]))
    masks = np.array([[(k >> j) & 1 for j in range(n)] for k in range(2 ** n)])
    p = s.proba_views(compose(view.image, segs, masks, s.fill_colour()))[:, target]
    table = {tuple(np.flatnonzero(m)): v for m, v in zip(masks, p)}
    expected = exact_shapley(lambda c: table[tuple(sorted(c))], n)

    vmap, facts = shap_map(s, view, target, max_evals=2 ** n + 10, n_segments=6)
    assert facts["superpixels"] == n and facts["model_calls"] == 2 ** n  # every coalition once, no more
    values = np.array([vmap[segs == k][0] for k in range(n)]) * np.abs(expected).max()
    np.testing.assert_allclose(values, expected, atol=1e-4)
    # efficiency: the values add up to p(view) - p(everything hidden)
    assert facts["sum_of_values"] == pytest.approx(table[tuple(range(n))] - table[()], abs=1e-5)
    assert facts["p_view"] == pytest.approx(table[tuple(range(n))], abs=1e-6)


def test_model_calls_are_bounded_and_the_cli_writes_the_same_map(photos, tmp_path):
    from wordsight.cli import main

    e = explain("efficientnet-lite0", photos[1], method="shap", shap_evals=30)[0]
    facts = e.evidence["method_facts"]
    assert facts["explainer"] == "kernel" and facts["max_evals"] == 30
    # 30 calls: at most (30 - 2) / 4 = 7 superpixels asked of SLIC (it may cut a few more or fewer)
    assert facts["model_calls"] <= 30 and 3 <= facts["superpixels"] <= 12, facts
    assert e.heatmap.shape == (400, 600) and np.abs(e.heatmap).max() == pytest.approx(1.0, abs=1e-6)
    assert facts["sum_of_values"] == pytest.approx(facts["p_view"] - facts["p_hidden"], abs=1e-6)
    assert e.evidence["probability"] == pytest.approx(facts["p_view"], abs=1e-6)
    with pytest.raises(ValueError, match="max_evals must be at least 10"):
        explain("efficientnet-lite0", photos[1], method="shap", shap_evals=5)
    out = tmp_path / "out"
    assert main(["explain", "efficientnet-lite0", str(photos[1]), "--out", str(out), "--method", "shap",
                 "--shap-evals", "30"]) == 0
    np.testing.assert_array_equal(np.load(out / "coffee.shap.npy"), e.heatmap)  # seeded: the same coalitions


def test_shap_maps_pass_the_faithfulness_check(photos):
    r = deletion_check("efficientnet-lite0", photos, method="shap", fraction=0.2, n_random=2, shap_evals=40)
    d = r["mean_drop"]
    assert r["method"] == "shap" and r["images"] == 4
    # measured: 0.061 salient, 0.013 random blobs, -0.021 random pixels (9 superpixels each)
    assert d["salient"] > d["random_blobs"] and d["salient"] > d["random_pixels"] + 0.05, d
