import io
import os

import numpy as np
import pytest
from PIL import Image

from wordsight.io.images import ImageError, decode_image, read_image, to_rgb


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_formats_decode_to_rgb(fmt):
    img = Image.new("RGB", (40, 30), (200, 30, 30))
    out = decode_image(_bytes(img, fmt))
    assert out.mode == "RGB" and out.size == (40, 30)
    r, g, b = np.asarray(out).reshape(-1, 3).mean(0)
    assert r > 150 and g < 80 and b < 80  # stays red through every codec


def test_gif_gives_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    r, _, b = np.asarray(decode_image(buf.getvalue()))[0, 0]
    assert r > 200 and b < 50


def test_exif_orientation_applied():
    img = Image.new("RGB", (60, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = decode_image(_bytes(img, "JPEG", exif=exif))
    assert out.size == (20, 60)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGBA", "CMYK"])
def test_modes_convert(mode):
    out = to_rgb(Image.new("RGB", (4, 4), (255, 255, 255)).convert(mode))
    assert out.mode == "RGB"
    assert np.asarray(out).min() >= 250  # white stays white in every mode


def test_transparency_goes_on_white():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))  # fully transparent black
    assert np.asarray(to_rgb(img)).min() == 255
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 0] * 256)
    pal.info["transparency"] = 0
    assert np.asarray(decode_image(_bytes(pal, "PNG"))).min() == 255


def test_sixteen_bit_and_float_rescaled():
    ramp = np.linspace(1000, 4000, 64, dtype=np.uint16).reshape(8, 8)
    out = np.asarray(decode_image(_bytes(Image.fromarray(ramp), "PNG")))[..., 0]
    assert out.min() == 0 and out.max() == 255  # a 12-bit image is not clipped to white
    assert np.all(np.diff(out.ravel().astype(int)) >= 0)  # order kept
    f = Image.fromarray(np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4), "F")
    out = np.asarray(to_rgb(f))
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "empty file"),
        (b"this is plain text, not a picture", "not a recognised image format"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 50, "not a recognised|cannot decode"),
    ],
)
def test_bad_bytes_raise_clear_errors(data, reason):
    with pytest.raises(ImageError, match=reason):
        decode_image(data)


def test_truncated_jpeg_is_an_error():
    rng = np.random.default_rng(0)
    data = _bytes(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    with pytest.raises(ImageError, match="truncated|cannot decode"):
        decode_image(data[: len(data) // 2])


def test_decompression_bomb_refused():
    data = _bytes(Image.new("L", (3000, 3000)), "PNG")
    with pytest.raises(ImageError, match="too many pixels"):
        decode_image(data, max_pixels=1_000_000)


def test_jpeg_draft_decodes_big_photos_smaller():
    data = _bytes(Image.new("RGB", (2048, 1536), "gray"), "JPEG")
    out = decode_image(data, draft_size=256)
    assert 256 <= min(out.size) < 1536  # DCT-scaled, still big enough for the model


def test_read_image_names_the_file(tmp_path):
    p = tmp_path / "broken é.jpg"
    p.write_bytes(b"nope")
    with pytest.raises(ImageError, match="broken é.jpg: not a recognised image format"):
        read_image(p)


@pytest.mark.parametrize("size", [(50, 1), (1, 50), (2000, 40), (40, 2000)])
def test_aspect_limit_lets_exactly_fifty_to_one_through_either_way(size):
    assert decode_image(_bytes(Image.new("L", size), "PNG")).size == size


@pytest.mark.parametrize("size", [(51, 1), (1, 51), (20000, 1), (1, 20000), (2001, 40), (40, 2001)])
def test_aspect_limit_refuses_wide_and_tall_strips_alike(size):
    w, h = size
    with pytest.raises(ImageError, match=f"too elongated: {w}x{h} has an aspect ratio above the limit of 50:1"):
        decode_image(_bytes(Image.new("L", size), "PNG"))


@pytest.mark.parametrize("size, limit", [((30, 10), 3.0), ((10, 30), 3.0), ((31, 10), 3.1), ((10, 31), 3.1)])
def test_aspect_limit_is_a_parameter_and_inclusive(size, limit):
    from wordsight.io.images import check_size

    check_size(*size, max_aspect=limit)
    with pytest.raises(ImageError, match="too elongated"):
        check_size(size[0] + (size[0] > size[1]), size[1] + (size[1] > size[0]), max_aspect=limit)


@pytest.mark.parametrize("size, ok", [((100, 100), True), ((101, 100), False), ((100, 101), False)])
def test_side_limit_checks_both_sides(size, ok):
    from wordsight.io.images import check_size

    if ok:
        check_size(*size, max_side=100)
    else:
        with pytest.raises(ImageError, match="side longer than the limit of 100 pixels"):
            check_size(*size, max_side=100)


@pytest.mark.parametrize("size, ok", [((100, 100), True), ((101, 99), True), ((101, 100), False)])
def test_pixel_limit_is_inclusive(size, ok):
    from wordsight.io.images import check_size

    if ok:
        check_size(*size, max_pixels=10_000)
    else:
        with pytest.raises(ImageError, match="too many pixels: 101x100 exceeds the limit of 10,000"):
            check_size(*size, max_pixels=10_000)


def _png_header(w: int, h: int) -> bytes:
    """A PNG whose header says w x h and that has no pixel data: the limits must refuse it (or
    not) before anything is decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_default_limits_are_the_documented_ones():
    from wordsight.io.images import DEFAULT_MAX_PIXELS

    assert DEFAULT_MAX_PIXELS == Image.MAX_IMAGE_PIXELS == 89_478_485  # PIL's own warning threshold
    # the side limit, read from the header: 30,000 px passes it (then fails to decode: no pixels), one more does not
    with pytest.raises(ImageError) as ok:
        decode_image(_png_header(30_000, 1_000))
    assert "side longer" not in str(ok.value) and "truncated" in str(ok.value)
    with pytest.raises(ImageError, match="too large: 30001x1000 has a side longer than the limit of 30,000 pixels"):
        decode_image(_png_header(30_001, 1_000))
    with pytest.raises(ImageError, match="decompression bomb"):  # PIL's own check, at open, at the same limit
        decode_image(_png_header(9_500, 9_500))


def test_the_largest_image_file_is_256_mib(tmp_path):
    from wordsight.io.images import DEFAULT_MAX_FILE_BYTES

    assert DEFAULT_MAX_FILE_BYTES == 256 * 2**20
    big = tmp_path / "huge.png"
    with open(big, "wb") as f:  # sparse: nothing is written or read
        f.truncate(DEFAULT_MAX_FILE_BYTES + 1)
    with pytest.raises(ImageError, match="huge.png.*268,435,456"):
        read_image(big)


def test_every_listed_extension_is_listed_from_a_folder(tmp_path):
    from wordsight.io.images import IMAGE_EXTENSIONS
    from wordsight.io.sources import open_source

    formats = {".jpg": "JPEG", ".jpeg": "JPEG", ".jfif": "JPEG", ".png": "PNG", ".webp": "WEBP", ".gif": "GIF",
               ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM", ".pgm": "PPM", ".pbm": "PPM",
               ".pnm": "PPM"}
    assert IMAGE_EXTENSIONS == set(formats)
    for ext, fmt in formats.items():
        mode = {".pgm": "L", ".pbm": "1"}.get(ext, "RGB")
        Image.new(mode, (8, 6)).save(tmp_path / f"img{ext.upper() if ext == '.png' else ext}", fmt)
    (tmp_path / "notes.txt").write_text("not an image")
    names = sorted(os.path.basename(s.path) for s in open_source(tmp_path).samples)
    assert names == sorted(f"img{ext.upper() if ext == '.png' else ext}" for ext in formats)
    for s in open_source(tmp_path).samples:
        assert read_image(s.path).size == (8, 6)


def _window(values, lo_hi=None):
    """The documented rule (io.window), recomputed with numpy: the 0.5th..99.5th percentile window
    of the finite values, linear onto 0..255, rounded, clipped; NaN at the window's bottom."""
    v = np.asarray(values, np.float64)
    lo, hi = lo_hi or np.percentile(v[np.isfinite(v)], (0.5, 99.5))
    return np.clip(np.rint((np.nan_to_num(v, nan=lo) - lo) * 255 / (hi - lo)), 0, 255).astype(int).tolist()


def test_high_depth_values_map_linearly_onto_0_255():
    # the percentile window of [1000, 2000, 3000, 1500] is 1007.5..2985: 2000 -> 128, 1500 -> 64
    a = np.array([[1000, 2000, 3000, 1500]], np.uint16)
    out = np.asarray(decode_image(_bytes(Image.fromarray(a), "PNG")))[..., 0]
    assert out.tolist() == _window(a) == [[0, 128, 255, 64]]
    one = np.asarray(decode_image(_bytes(Image.fromarray(np.array([[700]], np.uint16)), "PNG")))
    assert one.shape == (1, 1, 3) and one.max() == 0  # one pixel is an image (a constant: black)
    flat = np.asarray(to_rgb(Image.fromarray(np.full((3, 5), 9.5, np.float32), "F")))
    assert flat.shape == (3, 5, 3) and flat.max() == 0  # no range: black, no division by zero
    nan = np.full((2, 2), np.nan, np.float32)
    nan[0, 0] = np.inf
    assert np.asarray(to_rgb(Image.fromarray(nan, "F"))).max() == 0  # no finite value at all: black
    part = np.array([[0.0, np.nan, 2.0, 0.5]], np.float32)  # NaN takes the window's bottom (0.005..1.985)
    assert np.asarray(to_rgb(Image.fromarray(part, "F")))[..., 0].tolist() == _window(part) == [[0, 0, 255, 64]]


def test_high_depth_values_map_linearly_through_the_window():
    # window (1000, 3000): 1000 -> 0, 2000 -> 128 (127.5 rounded), 3000 -> 255, 1500 -> 64 (63.75)
    a = np.array([[1000, 2000, 3000, 1500]], np.uint16)
    out = np.asarray(decode_image(_bytes(Image.fromarray(a), "PNG"), window=(1000, 3000)))[..., 0]
    assert out.tolist() == [[0, 128, 255, 64]]
    part = np.array([[0.0, np.nan, 2.0, 1.0]], np.float32)  # NaN takes the window's low end
    assert np.asarray(to_rgb(Image.fromarray(part, "F"), (0.0, 2.0)))[..., 0].tolist() == [[0, 0, 255, 128]]


@pytest.mark.parametrize("mode", ["LA", "RGBa", "PA"])
def test_every_mode_with_alpha_goes_on_white(mode):
    img = Image.new("RGBA", (3, 2), (0, 0, 0, 0)).convert(mode) if mode != "RGBa" else Image.new("RGBa", (3, 2))
    assert np.asarray(to_rgb(img)).min() == 255, mode


def test_a_zero_sized_header_is_refused_on_either_side():
    from wordsight.io.images import check_size

    for w, h in ((0, 5), (5, 0), (0, 0)):
        with pytest.raises(ImageError, match=f"image has no pixels \\({w}x{h}\\)"):
            check_size(w, h)


def test_a_cut_png_says_truncated():
    data = _bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)), "PNG")
    with pytest.raises(ImageError, match=r"cannot decode image: truncated or corrupt image data \("):
        decode_image(data[: len(data) // 2])


def test_32_bit_integer_images_are_rescaled_too():
    a = np.array([[-5000, 0, 5000, 70000]], np.int32)  # mode "I" (32-bit TIFF, some 16-bit PNGs)
    img = Image.fromarray(a, "I") if Image.fromarray(a).mode != "I" else Image.fromarray(a)
    assert img.mode == "I"
    assert np.asarray(to_rgb(img, (-5000, 70000)))[..., 0].tolist() == [[0, 17, 34, 255]]
