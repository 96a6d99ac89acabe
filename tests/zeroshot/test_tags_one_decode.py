"""Zero-shot tags read the whole image and its tiles in one pass: one decode per image, the scores of
reading each view on its own (the per-tile loop it replaced)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

TAGS = ["cat", "coffee cup", "rocket", "astronaut"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from skimage import data

    d = tmp_path_factory.mktemp("tag-photos")
    paths = []
    for name, size in (("chelsea", (900, 600)), ("coffee", (400, 300)), ("rocket", (300, 450))):
        path = d / f"{name}.jpg"
        Image.fromarray(getattr(data, name)()).convert("RGB").resize(size).save(path, quality=90)
        paths.append(str(path))
    return paths


def test_tag_probabilities_with_tiles_decode_each_image_once_and_equal_the_per_view_reads(photos, tmp_path,
                                                                                         decodes):
    from wordsight.features.views import tile_view
    from wordsight.zeroshot.pipeline import read_images
    from wordsight.zeroshot.tags import tag_log_odds, tag_pipeline, tag_probabilities, tile_log_odds

    pipe = tag_pipeline(TAGS, quiet=True, cache=False).fit(photos)
    decodes.clear()  # the fit's reads
    P, fs = tag_probabilities(pipe, photos, tiles=2)
    assert fs.paths == photos
    assert [decodes(p) for p in photos] == [1, 1, 1] and decodes.total() == 3  # the whole image and its four tiles: one decode
    # what the loop over views computed: the whole image, then each tile read on its own
    whole = tag_log_odds(pipe, pipe.reading(read_images(photos, pipe.encoder, pipe.view_, cache=False)))
    tiles = [tag_log_odds(pipe, pipe.reading(read_images(photos, pipe.encoder, pipe.view_, cache=False,
                                                          tile=tile_view(pipe.view_, 2, i)))) for i in range(4)]
    assert decodes.total() == 3 + 5 * 3
    want = np.maximum(whole, np.max(tiles, 0))
    np.testing.assert_allclose(P, 1 / (1 + np.exp(-want)), atol=1e-6)
    assert not np.allclose(want, whole)  # the tiles count
    reordered = photos[::-1]
    np.testing.assert_allclose(tile_log_odds(pipe, reordered, 2, reordered), np.max(tiles, 0)[::-1], atol=1e-5)


@pytest.mark.parametrize("center", ["yes", "no"])
def test_fit_and_score_in_one_read_equals_fit_then_score(photos, decodes, center):
    """``zeroshot --multilabel``'s path: the view chosen, one read of the whole images and tiles, the
    pipeline fitted (centred, with center=yes) on the whole images' reading."""
    from wordsight.zeroshot.tags import fit_tag_probabilities, tag_pipeline, tag_probabilities

    two = tag_pipeline(TAGS, quiet=True, cache=False, center=center).fit(photos)
    want, _ = tag_probabilities(two, photos, tiles=2)
    decodes.clear()  # the reads of fit then score
    one = tag_pipeline(TAGS, quiet=True, cache=False, center=center)
    P, fs = fit_tag_probabilities(one, photos, tiles=2)
    assert decodes.total() == len(photos) and fs.paths == photos
    assert one.view_ == two.view_ and one.centered_ == two.centered_ == (center == "yes")
    np.testing.assert_allclose(P, want, atol=1e-6)
    P0, _ = fit_tag_probabilities(tag_pipeline(TAGS, quiet=True, cache=False, center=center), photos, tiles=0)
    np.testing.assert_allclose(P0, tag_probabilities(two, photos, tiles=0)[0], atol=1e-6)
