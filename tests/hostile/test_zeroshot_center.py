"""A centring share that is not one is refused with the reason (issue 26's ``center`` share and
the pipeline's ``others``)."""
from __future__ import annotations

import numpy as np
import pytest

from wordsight.zeroshot import ZeroShotClassifier
from wordsight.zeroshot.pipeline import ZeroShotPipeline


@pytest.mark.parametrize("center", [1.5, -0.1, "yes", float("nan")])
def test_a_bad_share_is_refused(center):
    X = np.random.default_rng(0).normal(size=(3, 384))
    with pytest.raises(ValueError, match="center must be True, False or a share in"):
        ZeroShotClassifier(["cat", "dog"], method="names", center=center).fit(X)


def test_an_unknown_pipeline_centring_names_the_choices():
    with pytest.raises(ValueError, match="center must be one of auto, yes, no, others, not 'half'"):
        ZeroShotPipeline(["cat", "dog"], center="half")
