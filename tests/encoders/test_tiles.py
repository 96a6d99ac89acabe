"""tiles:<grid>:<encoder> (issue 24): the inner encoder's embedding of each tile, max- and
mean-pooled, keyed apart in the cache; bad names are one-line errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from wordsight.encoders import get_config, load_model


def test_the_tile_embedding_is_max_and_mean_of_the_inner_encoders_tiles():
    tiles, inner = load_model("tiles:2:efficientnet-lite0"), load_model("efficientnet-lite0")
    cfg, icfg = get_config("tiles:2:efficientnet-lite0"), get_config("efficientnet-lite0")
    assert (cfg.dim, cfg.input_size, cfg.resize_mode, cfg.has_imagenet_head) == (2 * icfg.dim, 448, "exact", False)
    assert cfg.fingerprint != icfg.fingerprint and cfg.fingerprint != get_config("tiles:3:efficientnet-lite0").fingerprint
    x = torch.randn(2, 3, 320, 320, generator=torch.Generator().manual_seed(0))  # any size: the tiles are 160 px
    with torch.no_grad():
        got = tiles(x)["embedding"].numpy()
        each = np.stack([inner(x[:, :, r:r + 160, c:c + 160])["embedding"].numpy()
                         for r in (0, 160) for c in (0, 160)], 1)
    np.testing.assert_allclose(got[:, :icfg.dim], each.max(1), atol=1e-5)
    np.testing.assert_allclose(got[:, icfg.dim:], each.mean(1), atol=1e-5)
    assert tiles.flexible_size


@pytest.mark.parametrize("name,words", [("tiles:1:efficientnet-lite0", "tiles:<grid 2..4>"),
                                        ("tiles:9:efficientnet-lite0", "tiles:<grid 2..4>"),
                                        ("tiles:2:", "tiles:<grid 2..4>"),
                                        ("tiles:2:minilm", "not an image encoder")])
def test_bad_tile_names_are_refused_in_one_line(name, words):
    with pytest.raises(ValueError, match=words):
        get_config(name)
