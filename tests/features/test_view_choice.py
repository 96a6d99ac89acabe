"""The automatic view choice (choose_view_of_samples) reads large JPEGs drafted, not whole: the same
view chosen as from the full decode, on large images written as JPEG and PNG."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from wordsight.features.views import VIEW_DECODE_SIZE, choose_view, choose_view_of_samples, on_dark_background
from wordsight.io.images import decode_image
from wordsight.io.sources import Sample

SIZE = (2400, 1600)  # drafted to 1/4 (600x400) for VIEW_DECODE_SIZE = 256


def _garment_on_black(seed: int) -> Image.Image:
    """A light object on a noisy near-black background (a large Fashion-MNIST-like picture)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 12, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    img = Image.fromarray(a)
    ImageDraw.Draw(img).ellipse((500, 200, 1900, 1500), fill=(230, 220, 210))
    return img


def _photo(name: str) -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB").resize(SIZE)


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """{name: path} of large images, each as a JPEG and a PNG."""
    d = tmp_path_factory.mktemp("large")
    images = {"garment": _garment_on_black(0), "chelsea": _photo("chelsea"), "hubble": _photo("hubble_deep_field"),
              "astronaut": _photo("astronaut")}
    out = {}
    for name, img in images.items():
        for ext in ("jpg", "png"):
            img.save(d / f"{name}.{ext}", **({"quality": 90} if ext == "jpg" else {"compress_level": 1}))
            out[f"{name}.{ext}"] = str(d / f"{name}.{ext}")
    return out



def _full_choice(paths) -> str:
    return choose_view([decode_image(open(p, "rb").read()) for p in paths])


@pytest.mark.parametrize("name, expected", [("garment", "light-background"), ("hubble", "light-background"),
                                            ("chelsea", "plain"), ("astronaut", "plain")])
@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_the_reduced_read_chooses_the_full_decodes_view(large, name, ext, expected):
    path = large[f"{name}.{ext}"]
    assert choose_view_of_samples([Sample(path)]) == _full_choice([path]) == expected


def test_a_large_jpeg_is_decoded_drafted_and_a_png_whole(large, loads):
    choose_view_of_samples([Sample(large["garment.jpg"])])
    assert set(loads) == {(600, 400)}  # 1/4 of 2400x1600: both sides still >= VIEW_DECODE_SIZE
    assert min(loads[0]) >= VIEW_DECODE_SIZE and min(SIZE) // 8 < VIEW_DECODE_SIZE
    loads.clear()
    choose_view_of_samples([Sample(large["garment.png"])])
    assert set(loads) == {SIZE}


def test_no_samples_no_images_read_the_plain_view(large, tmp_path):
    assert choose_view_of_samples([]) == "plain"
    missing = Sample(str(tmp_path / "missing.jpg"))
    assert choose_view_of_samples([missing]) == "plain"
    assert choose_view_of_samples([missing, Sample(large["garment.jpg"])]) == "light-background"  # skipped, not the end


def test_the_majority_over_a_mixed_set_is_the_full_decodes(large):
    dark = [large["garment.jpg"], large["hubble.jpg"], large["garment.png"]]
    light = [large["chelsea.jpg"], large["astronaut.png"]]
    for paths in (dark + light, light + dark[:1], dark[:2] + light):
        assert choose_view_of_samples([Sample(p) for p in paths]) == _full_choice(paths)
    assert choose_view_of_samples([Sample(p) for p in dark + light]) == "light-background"  # 3 of 5
    assert choose_view_of_samples([Sample(p) for p in dark[:2] + light]) == "plain"  # 2 of 4: no majority


def test_the_frame_is_read_from_its_strips_exactly():
    """The frame (top, bottom, left, right strips) equals the whole grey image's edges."""
    from wordsight.features.views import _frame

    rng = np.random.default_rng(1)
    for shape in [(37, 53, 3), (8, 8, 3), (6, 11, 3), (7, 5, 3), (3, 9, 3), (1, 1, 3)]:  # widths 2, 1 and 1
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        img = Image.fromarray(a)
        g = np.asarray(img.convert("L"), dtype=np.float32)
        w = max(1, min(2, min(g.shape) // 4))
        want = np.concatenate([g[:w].ravel(), g[-w:].ravel(), g[:, :w].ravel(), g[:, -w:].ravel()])
        np.testing.assert_array_equal(_frame(img), want)
        assert on_dark_background(img) == (float(np.mean(want < 16)) >= 0.5)
