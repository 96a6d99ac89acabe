"""extract_views: many views of one read and one decode, each view exactly extract_features'."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wordsight.features import extract_features, extract_models, extract_views
from wordsight.features.views import get_view, tile_view

ENC = "efficientnet-lite0"
VIEWS = [(None, ""), get_view("invert"), *(tile_view(None, 2, i) for i in range(4))]


def _photo(name: str, size) -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB").resize(size)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A photo-sized JPEG (decoded with JPEG draft scaling), a PNG, and a tiny PNG (read at the
    small input size): every path a view can take through the decoder."""
    d = tmp_path_factory.mktemp("views")
    _photo("chelsea", (1200, 900)).save(d / "cat.jpg", quality=90)
    _photo("coffee", (300, 200)).save(d / "coffee.png")
    _photo("astronaut", (40, 30)).save(d / "tiny.png")
    return [str(d / "coffee.png"), str(d / "cat.jpg"), str(d / "tiny.png")]  # not sorted: order is kept


def test_every_view_equals_extract_features_with_that_view(files, tmp_path):
    sets = extract_views(files, ENC, VIEWS, cache=False, quiet=True)
    assert len(sets) == len(VIEWS) and not sets.failures
    for (fn, key), fs in zip(VIEWS, sets):
        one = extract_features(files, ENC, view=fn, view_key=key, cache=False, quiet=True)
        assert fs.paths == one.paths == files
        assert fs.embeddings.shape == (3, 1280)
        for name in ("embedding", "logits"):
            np.testing.assert_allclose(fs.arrays[name], one.arrays[name], rtol=1e-5, atol=1e-5)
    # the views differ: a tile is not the whole image, the inversion not the plain one
    assert np.abs(sets[0].embeddings - sets[1].embeddings).max() > 0.1
    assert np.abs(sets[2].embeddings - sets[3].embeddings).max() > 0.1


def test_one_decode_per_image_cold_none_warm_and_a_view_loop_decodes_per_view(files, tmp_path, decodes):
    cold = extract_views(files, ENC, VIEWS, cache=tmp_path / "c", quiet=True)
    assert [decodes(p) for p in files] == [1, 1, 1]
    assert [(fs.computed, fs.cached) for fs in cold] == [(3, 0)] * len(VIEWS)
    warm = extract_views(files, ENC, VIEWS, cache=tmp_path / "c", quiet=True)
    assert decodes.total() == 3  # all cache hits: nothing decoded again
    assert [(fs.computed, fs.cached) for fs in warm] == [(0, 3)] * len(VIEWS)
    for a, b in zip(cold, warm):
        np.testing.assert_array_equal(a.embeddings, b.embeddings)
    for fn, key in VIEWS:  # the per-view loop it replaces: one decode per image and view
        extract_features(files, ENC, view=fn, view_key=key, cache=tmp_path / "loop", quiet=True)
    assert [decodes(p) for p in files] == [1 + len(VIEWS)] * 3


def test_cache_entries_are_shared_with_extract_features_both_ways(files, tmp_path, decodes):
    cache = tmp_path / "c"
    fn, key = VIEWS[3]
    first = extract_features(files[:2], ENC, view=fn, view_key=key, cache=cache, quiet=True)
    sets = extract_views(files, ENC, VIEWS, cache=cache, quiet=True)
    assert (sets[3].computed, sets[3].cached) == (1, 2)  # the tile extract_features wrote is hit
    assert [(fs.computed, fs.cached) for v, fs in enumerate(sets) if v != 3] == [(3, 0)] * (len(VIEWS) - 1)
    np.testing.assert_array_equal(sets[3].embeddings[:2], first.embeddings)
    inv_fn, inv_key = VIEWS[1]
    again = extract_features(files, ENC, view=inv_fn, view_key=inv_key, cache=cache, quiet=True)
    assert (again.computed, again.cached) == (0, 3)  # extract_views' entries are hit by extract_features
    # a file whose every view is cached is not decoded; a new one beside it is, once
    new = str(tmp_path / "new.png")
    _photo("rocket", (200, 150)).save(new)
    before = decodes.total()
    more = extract_views([*files, new], ENC, VIEWS, cache=cache, quiet=True)
    assert decodes.total() - before == 1 and decodes(new) == 1
    assert [(fs.computed, fs.cached) for fs in more] == [(1, 3)] * len(VIEWS)


def test_a_corrupt_file_is_reported_once_and_the_others_come_back(files, tmp_path, decodes):
    bad, gone = tmp_path / "bad.jpg", tmp_path / "gone.png"
    bad.write_text("I am not a picture")
    gone.symlink_to(tmp_path / "nowhere.png")
    paths = [files[0], str(bad), files[1], str(gone), files[2]]
    sets = extract_views(paths, ENC, VIEWS, cache=False, quiet=True)
    assert sorted((str(f.path), f.reason) for f in sets.failures) == [
        (str(bad), "not a recognised image format"), (str(gone), "dangling link")]
    assert decodes(bad) == 1  # one decode tried, not one per view
    for fs in sets:
        assert fs.paths == files
        assert sorted(str(f.path) for f in fs.failures) == sorted([str(bad), str(gone)])
    one = extract_features(paths, ENC, view=VIEWS[2][0], view_key=VIEWS[2][1], cache=False, quiet=True)
    assert sorted(one.failures, key=str) == sorted(sets[2].failures, key=str)


def test_a_view_that_fails_fails_only_its_own_set(files):
    def broken(img):
        raise RuntimeError("no such view")

    sets = extract_views(files, ENC, [(None, ""), (broken, "broken-v1")], cache=False, quiet=True)
    assert sets[0].paths == files and sets[1].paths == []
    assert {f.reason for f in sets[1].failures} == {"cannot decode image: RuntimeError: no such view"}
    assert [f.path for f in sets.failures] == files


def test_views_need_their_own_keys_and_run_on_this_machine(files):
    with pytest.raises(ValueError, match="its own view_key"):
        extract_views(files, ENC, [tile_view(None, 2, 0), tile_view(None, 2, 0)], cache=False, quiet=True)
    with pytest.raises(ValueError, match="extract_features per view"):
        extract_views(files, ENC, VIEWS, cache=False, quiet=True, engine="ray")
    plain = extract_views(files, ENC, cache=False, quiet=True)  # no views: the plain image
    assert len(plain) == 1 and plain[0].paths == files
    with pytest.raises(TypeError, match="chache"):  # extract_models' keywords only, a typo refused
        extract_views(files, ENC, VIEWS, chache=False)


def test_extract_views_is_extract_models_with_one_read(files):
    """The options (precision, batch size, the small input size) reach the read as they reach
    extract_models, and the model's name titles each set."""
    opts = dict(cache=False, quiet=True, batch_size=2, small_input=None, workers=1)
    one = extract_views(files, ENC, VIEWS[:2], precision="fp32", **opts)
    (want,) = extract_models(files, [(ENC, VIEWS[:2], "fp32")], **opts)
    for a, b in zip(one, want, strict=True):
        assert a.model == b.model == ENC and a.paths == b.paths == files
        np.testing.assert_array_equal(a.embeddings, b.embeddings)
    auto = extract_views(files, ENC, VIEWS[:1], cache=False, quiet=True)  # the tiny PNG at the small input size
    np.testing.assert_array_equal(auto[0].embeddings[:2], one[0].embeddings[:2])
    assert np.abs(auto[0].embeddings[2] - one[0].embeddings[2]).max() > 1e-3


def test_video_frames_decode_once_for_all_views(tmp_path, monkeypatch):
    from wordsight.features.engines import multi_view
    from wordsight.io.media_options import MediaOptions
    from wordsight.io.sources import open_source

    from ..media.conftest import write_video

    clip = write_video(tmp_path / "c.mp4", [(np.asarray(_photo(n, (96, 64))), 5) for n in ("chelsea", "coffee")])
    calls = []
    real = multi_view.decode_group
    monkeypatch.setattr(multi_view, "decode_group", lambda m, f: calls.append(len(m)) or real(m, f))
    src = open_source(clip, media=MediaOptions(sample="every", every=5))
    views = VIEWS[:1] + VIEWS[2:4]
    sets = extract_views(src, ENC, views, cache=False, quiet=True)
    assert calls == [2]  # the file's two frames, one pass, for three views
    for (fn, key), fs in zip(views, sets):
        one = extract_features(src, ENC, view=fn, view_key=key, cache=False, quiet=True)
        assert [s.path.frame for s in fs.samples] == [0, 5]
        np.testing.assert_allclose(fs.embeddings, one.embeddings, rtol=1e-5, atol=1e-5)


def test_chunks_hold_about_one_extractions_inputs_and_keep_the_order(tmp_path, monkeypatch):
    from wordsight.features.engines.multi_view import MultiViewBatch

    rng = np.random.default_rng(3)
    paths = []
    for i in range(14):
        path = tmp_path / f"{13 - i:02d}.png"  # names against the order given
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    sizes = []
    real = MultiViewBatch.prepare
    monkeypatch.setattr(MultiViewBatch, "prepare", lambda self, s, pool=None: sizes.append(len(s)) or real(self, s, pool))
    sets = extract_views(paths, ENC, VIEWS, cache=False, quiet=True, batch_size=4)
    assert sizes == [6, 6, 2]  # 32 model inputs a chunk (as one view's chunk), over 6 views: 6 images
    for (fn, key), fs in zip(VIEWS, sets):
        one = extract_features(paths, ENC, view=fn, view_key=key, cache=False, quiet=True, batch_size=4)
        assert fs.paths == paths
        np.testing.assert_allclose(fs.embeddings, one.embeddings, rtol=1e-5, atol=1e-5)


def test_a_tile_bag_reads_each_image_once_for_its_13_tiles(files, tmp_path, decodes):
    """``tilebag:2,3:`` (the mil head's features) through extract_views: one decode per image on a
    cold cache, each tile what extract_features gives with that tile view."""
    from wordsight.features.tilebag import extract_bag

    bag = extract_bag(files, f"tilebag:2,3:{ENC}", cache=tmp_path / "c", quiet=True)
    assert [decodes(p) for p in files] == [1, 1, 1]
    assert bag.paths == files and (bag.computed, bag.cached) == (13 * 3, 0)
    rows = bag.embeddings.reshape(3, 13, 1280)
    for t, (g, i) in enumerate([(2, i) for i in range(4)] + [(3, i) for i in range(9)]):
        fn, key = tile_view(None, g, i)
        one = extract_features(files, ENC, view=fn, view_key=key, cache=tmp_path / "c", quiet=True)
        assert (one.computed, one.cached) == (0, 3)  # the bag wrote the tile views' own entries
        np.testing.assert_array_equal(rows[:, t], one.embeddings)
