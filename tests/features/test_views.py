"""Each image view (plain, light-background, invert), checked pixel by pixel against numpy."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wordsight.features.views import VIEWS, border_brightness, get_view, invert, light_background


def frame(inside: int, border: int, size=12, width=2) -> Image.Image:
    a = np.full((size, size, 3), border, np.uint8)
    a[width:-width, width:-width] = inside
    return Image.fromarray(a)


def test_border_brightness_is_the_mean_of_a_two_pixel_frame():
    img = frame(inside=250, border=10)
    assert border_brightness(img) == pytest.approx(10.0)
    a = np.zeros((12, 12), np.uint8)
    a[0] = 240  # the top row: 12 pixels of the top strip, and 2 + 2 of the side strips (corners count twice)
    assert border_brightness(Image.fromarray(a)) == pytest.approx(240 * 16 / (4 * 24))


def test_invert_view_is_255_minus_every_channel():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(invert(Image.fromarray(a))), 255 - a)
    grey = rng.integers(0, 256, (5, 5), dtype=np.uint8)
    out = np.asarray(invert(Image.fromarray(grey)))
    assert out.shape == (5, 5, 3) and (out == (255 - grey)[..., None]).all()


@pytest.mark.parametrize("border, inverted", [(15, True), (16, False), (200, False), (0, True)])
def test_light_background_view_inverts_only_dark_borders(border, inverted):
    """Near-black is below 16: a frame at 15 is a plain dark background (a light object on black),
    16 is not."""
    img = frame(inside=230, border=border)
    out = np.asarray(light_background(img))
    expected = 255 - np.asarray(img) if inverted else np.asarray(img)
    np.testing.assert_array_equal(out, expected)


def test_views_by_name_and_their_cache_keys():
    assert get_view(None) == (None, "") and get_view("plain") == (None, "")
    assert get_view("invert") == (invert, "invert-v1")
    assert get_view("light-background") == (light_background, "light-background-v2")
    assert set(VIEWS) == {"plain", "light-background", "invert"}
    assert len({key for _, key in VIEWS.values()}) == 3  # each view cached apart
    with pytest.raises(ValueError, match="unknown view 'sepia': choose one of plain, light-background, invert"):
        get_view("sepia")


@pytest.mark.parametrize("dark_pixels, inverted", [(32, True), (31, False)])
def test_light_background_needs_half_the_frame_near_black(dark_pixels, inverted):
    """A 2-pixel frame of an 8x8 image has 64 entries (corners counted twice); 32 near-black is
    half (inverted), 31 is not."""
    from wordsight.features.views import _frame

    img = np.full((8, 8), 200, np.uint8)
    flat = img.reshape(-1)
    frame_idx = [i for i in range(64) if i // 8 in (0, 1, 6, 7) or i % 8 in (0, 1, 6, 7)]
    img2 = Image.fromarray(img)
    # darken frame pixels until the frame (as the view reads it) has the wanted count of near-black
    for i in frame_idx:
        trial = flat.copy()
        trial[i] = 0
        if int((_frame(Image.fromarray(trial.reshape(8, 8))) < 16).sum()) > dark_pixels:
            break
        flat[:] = trial
        img2 = Image.fromarray(flat.reshape(8, 8))
    assert int((_frame(img2) < 16).sum()) == dark_pixels
    rgb = np.asarray(img2.convert("RGB"))
    expected = 255 - rgb if inverted else np.asarray(img2)
    np.testing.assert_array_equal(np.asarray(light_background(img2)), expected)
