"""extract_blocks reads a global encoder, ``tiles:N:`` and a tile bag from one read and one decode of
each image (features.multi_view.extract_models): the features and the cache entries are exactly
those of one read per block (extract_features / extract_bag), the decodes are counted."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from PIL import Image

from wordsight.estimator.feature_blocks import extract_blocks
from wordsight.features import extract_features
from wordsight.features.tilebag import extract_bag, is_bag

ENC = "efficientnet-lite0"
BAG = f"tilebag:2:{ENC}"
TILES = f"tiles:2:{ENC}"


def _photo(name: str, size) -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB").resize(size)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A photo-sized JPEG (drafted alike by every block), a PNG, a tiny PNG (small input size)."""
    d = tmp_path_factory.mktemp("blocks")
    _photo("chelsea", (1200, 900)).save(d / "cat.jpg", quality=90)
    _photo("coffee", (300, 200)).save(d / "coffee.png")
    _photo("astronaut", (40, 30)).save(d / "tiny.png")
    return [str(d / "coffee.png"), str(d / "cat.jpg"), str(d / "tiny.png")]


def _entries(folder) -> dict:
    with sqlite3.connect(folder / "features.sqlite") as db:
        return dict(db.execute("SELECT key, data FROM features").fetchall())


def _per_block(files, encoders, cache, **kw) -> dict:
    """What extract_blocks read before: one extraction per block."""
    return {e: (extract_bag if is_bag(e) else extract_features)(files, e, cache=cache, quiet=True, **kw)
            for e in encoders}


@pytest.mark.parametrize("encoders", [[ENC, BAG], [ENC, TILES, BAG], [BAG, TILES]])
def test_one_decode_per_image_gives_the_per_block_features_and_cache_entries(files, tmp_path, decodes, encoders):
    blocks = extract_blocks(files, encoders, cache=tmp_path / "one")
    assert [decodes(p) for p in files] == [1, 1, 1]  # every block from one decode of each image
    per = _per_block(files, encoders, tmp_path / "per")
    assert [decodes(p) for p in files] == [1 + len(encoders)] * 3  # the old path: one decode per block
    assert [s.path for s in blocks.samples] == files and not blocks.failures
    for e in encoders:
        assert np.abs(blocks.embeddings[e] - per[e].embeddings).max() == 0.0
    if ENC in encoders:  # the ImageNet probabilities: the global encoder's (the others have no head)
        assert np.abs(blocks.probs - per[ENC].probabilities).max() == 0.0 and blocks.probs_encoder == ENC
    else:
        assert blocks.probs is None
    one, each = _entries(tmp_path / "one"), _entries(tmp_path / "per")
    assert set(one) == set(each) and len(one) == 3 * sum(4 if is_bag(e) else 1 for e in encoders)
    assert all(one[k] == each[k] for k in one)  # byte for byte: the same entries


def test_a_warm_cache_decodes_nothing_and_a_new_block_reads_only_its_own(files, tmp_path, decodes):
    extract_blocks(files, [ENC], cache=tmp_path / "c")
    assert [decodes(p) for p in files] == [1, 1, 1]
    blocks = extract_blocks(files, [ENC, BAG], cache=tmp_path / "c")  # the global block is cached
    assert [decodes(p) for p in files] == [2, 2, 2]  # one decode for the bag's four tiles
    again = extract_blocks(files, [ENC, BAG], cache=tmp_path / "c")
    assert [decodes(p) for p in files] == [2, 2, 2]  # all hits: nothing decoded
    np.testing.assert_array_equal(again.embeddings[BAG], blocks.embeddings[BAG])


def test_blocks_that_draft_a_jpeg_to_different_scales_decode_it_at_each(tmp_path, decodes):
    """A 2000x1500 JPEG: EfficientNet-Lite0 drafts it to 1/4 (500x375, for its 256-px resize), the
    448-px ``tiles:2:`` to 1/2 (1000x750): two decodes, each block's features its own read's."""
    path = tmp_path / "big.jpg"
    _photo("chelsea", (2000, 1500)).save(path, quality=90)
    blocks = extract_blocks([str(path)], [ENC, BAG, TILES], cache=tmp_path / "one")
    assert decodes(path) == 2 and sorted(decodes.drafts) == [256, 448]
    per = _per_block([str(path)], [ENC, BAG, TILES], tmp_path / "per")
    for e in (ENC, BAG, TILES):
        assert np.abs(blocks.embeddings[e] - per[e].embeddings).max() == 0.0
    assert _entries(tmp_path / "one").keys() == _entries(tmp_path / "per").keys()


def test_augmented_views_share_the_decode_too(files, tmp_path, decodes):
    from wordsight.features.views import invert

    blocks = extract_blocks(files, [ENC, BAG], view=invert, view_key="invert-v1", cache=False)
    assert [decodes(p) for p in files] == [1, 1, 1]
    bag = extract_bag(files, BAG, view=invert, view_key="invert-v1", cache=False, quiet=True)
    assert np.abs(blocks.embeddings[BAG] - bag.embeddings).max() == 0.0


def test_one_progress_bar_counts_every_image_once(files, tmp_path, monkeypatch):
    from wordsight.features import multi_view

    bars = []
    real = multi_view._progress

    def spy(total, quiet, desc):
        bar = real(total, True, desc)
        bars.append([total, desc, 0])
        update = bar.update

        def counted(n=1):
            bars[-1][2] += n
            return update(n)

        bar.update = counted
        return bar

    monkeypatch.setattr(multi_view, "_progress", spy)
    extract_blocks([*files, str(tmp_path / "missing.png")], [ENC, BAG], cache=False)
    assert bars == [[4, ENC, 4]]  # three images and the missing file, once each


def test_video_frames_are_decoded_in_one_pass_for_every_block(tmp_path, monkeypatch):
    from wordsight.features.engines import multi_view
    from wordsight.io.media_options import MediaOptions
    from wordsight.io.sources import open_source

    from ..media.conftest import write_video

    clip = write_video(tmp_path / "c.mp4", [(np.asarray(_photo(n, (96, 64))), 5) for n in ("chelsea", "coffee")])
    calls = []
    real = multi_view.decode_group
    monkeypatch.setattr(multi_view, "decode_group", lambda m, f: calls.append(len(m)) or real(m, f))
    src = open_source(clip, media=MediaOptions(sample="every", every=5))
    blocks = extract_blocks(src, [ENC, BAG, TILES], cache=tmp_path / "one")
    assert calls == [2]  # the file's two frames, one pass, for the three blocks
    assert [s.path.frame for s in blocks.samples] == [0, 5]
    per = _per_block(src, [ENC, BAG, TILES], tmp_path / "per")
    for e in (ENC, BAG, TILES):
        assert np.abs(blocks.embeddings[e] - per[e].embeddings).max() == 0.0
    assert _entries(tmp_path / "one").keys() == _entries(tmp_path / "per").keys()
