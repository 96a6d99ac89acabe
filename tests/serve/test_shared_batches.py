"""The predictor's batch functions with the images of several requests in one batch: an image
that fails must not shift the others' answers (issue 28: the describe batch took its row index
from the requested samples, wrong once an earlier image in the batch failed)."""
from __future__ import annotations

import numpy as np
import pytest

from wordsight.io.sources import Sample

BAD = b"\x89PNG\r\n\x1a\n not really a png"


@pytest.fixture(scope="module")
def zs_predictor():
    from wordsight.serve import ServeSettings
    from wordsight.serve.predictor import Predictor

    return Predictor(ServeSettings(model_dir=None))


def _same_row(got: dict, want: dict):
    assert set(got) == set(want) == {"reading", "description"}
    assert got["description"] == want["description"]
    assert set(got["reading"]) == set(want["reading"])
    for k in want["reading"]:
        np.testing.assert_allclose(got["reading"][k], want["reading"][k], atol=1e-6)


def test_a_batch_bad_good_good_equals_single_calls(zs_predictor, images):
    p = zs_predictor
    items = [(Sample("req1/0", data=BAD), "plain"), (Sample("req2/0", data=images["cat"]), "plain"),
             (Sample("req3/0", data=images["rocket"]), "plain")]
    batch = p.concepts_batch(items)
    singles = [p.concepts_batch([it])[0] for it in items]
    assert set(batch[0]) == {"error"} and batch[0] == singles[0] and batch[0]["error"]
    _same_row(batch[1], singles[1])
    _same_row(batch[2], singles[2])
    # a cat and a rocket read differently, so a shifted row cannot pass
    assert any(np.abs(np.asarray(batch[1]["reading"][k]) - batch[2]["reading"][k]).max() > 1e-2
               for k in batch[1]["reading"])


def test_two_views_in_one_batch_with_a_failure_each_keep_their_rows(zs_predictor, images):
    # and a third view whose only image fails
    p = zs_predictor
    items = [(Sample("a", data=images["coffee"]), "invert"), (Sample("b", data=BAD), "plain"),
             (Sample("c", data=BAD), "invert"), (Sample("d", data=images["astronaut"]), "plain"),
             (Sample("e", data=images["cat"]), "invert"), (Sample("f", data=BAD), "light-background")]
    batch = p.concepts_batch(items)
    for got, item in zip(batch, items):
        want = p.concepts_batch([item])[0]
        if "error" in want:
            assert got == want
        else:
            _same_row(got, want)


def test_predict_batch_bad_good_good_equals_single_calls(model_dir, images):
    from wordsight.serve import ServeSettings
    from wordsight.serve.predictor import Predictor

    p = Predictor(ServeSettings(model_dir=model_dir))
    samples = [Sample("r1/0", data=BAD), Sample("r2/0", data=images["coffee"]), Sample("r3/0", data=images["cat"])]
    batch = p.predict_batch(samples)
    singles = [p.predict_batch([s])[0] for s in samples]
    assert batch[0].error and batch[0].error == singles[0].error
    for got, want in zip(batch[1:], singles[1:]):
        assert got.path == want.path and got.error is None
        g, w = got.record, want.record
        assert g.path == w.path and g.error is None and g.description == w.description and g.description
        assert [c for c, _ in g.top_k] == [c for c, _ in w.top_k]
        np.testing.assert_allclose([v for _, v in g.top_k], [v for _, v in w.top_k], atol=1e-6)
        assert want.ood is not None  # the model keeps calibration scores: each image has its own
        assert got.ood == pytest.approx(want.ood, abs=1e-6)
    assert batch[1].record.predicted != batch[2].record.predicted
