"""Where a zero-shot tag is said present (issue 24): each tag's log-odds against "none" shifted by
the reference quantile of its log-odds over the concept bank's ImageNet things, pinned against an
independent computation and on real photos (scikit-image's, written as JPEG files)."""
from __future__ import annotations

import numpy as np
import pytest

from wordsight._util.numerics import l2_normalize
from wordsight.text.concepts import default_bank
from wordsight.zeroshot import tags as tagging

TAGS = ["person", "cat", "cup", "rocket", "car", "bicycle", "motorcycle", "horse", "clock", "coin"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    import skimage.data
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for name in ("chelsea", "coffee", "horse", "grass"):
        im = np.asarray(getattr(skimage.data, name)())
        if im.dtype == bool:  # the horse is a silhouette
            im = im.astype(np.uint8) * 255
        elif im.dtype != np.uint8:
            im = (255 * (im - im.min()) / max(np.ptp(im), 1e-9)).astype(np.uint8)
        Image.fromarray(im).convert("RGB").save(folder / f"{name}.jpg")
        out[name] = str(folder / f"{name}.jpg")
    return out


@pytest.fixture(scope="module")
def pipe(photos):
    return tagging.tag_pipeline(TAGS, quiet=True).fit(list(photos.values()))


def test_the_offsets_are_the_90th_percentile_of_the_imagenet_things_log_odds(pipe):
    things = l2_normalize(np.asarray(default_bank(pipe.text_model).embeddings, np.float64))
    total = 0
    for way, zs in pipe.ways_.items():
        assert zs.image_mean_ is None  # 4 images: not centred, so each way scores the bank's rows as they are
        texts = np.asarray(zs.class_embeddings_, np.float64)
        cos = things @ texts.T * zs.scale_
        total = total + (cos[:, :-1] - cos[:, -1:])  # each tag against "none", the last class
    expected = np.percentile(total / len(pipe.ways_), 90, axis=0)
    np.testing.assert_allclose(pipe.offsets_, expected, rtol=1e-4, atol=1e-4)
    assert pipe.offsets_.shape == (len(TAGS),) and np.all(pipe.offsets_ > 0)  # every tag beats "none" on most things


def test_real_photos_get_their_tags_and_a_texture_none(pipe, photos):
    proba, fs = tagging.tag_probabilities(pipe, list(photos.values()))  # the whole image
    found = {p.rsplit("/", 1)[-1][:-4]: {t for t, q in zip(TAGS, row) if q >= tagging.THRESHOLD}
             for p, row in zip(fs.paths, proba)}
    assert found == {"chelsea": {"cat"}, "coffee": {"cup"}, "horse": {"horse"}, "grass": set()}
    pipe_raw = tagging.tag_pipeline(TAGS, quiet=True).fit(list(photos.values()))
    pipe_raw.offsets_ = np.zeros(len(TAGS))  # before the shift: most tags beat "none" on every photo
    raw, _ = tagging.tag_probabilities(pipe_raw, list(photos.values()))
    assert (raw >= 0.5).sum(1).min() >= 2 and (raw >= 0.5).sum() > 2 * (proba >= 0.5).sum()
