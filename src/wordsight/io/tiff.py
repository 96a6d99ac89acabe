"""TIFF files through tifffile: pages as frames, any sample type (16-bit, 32-bit, float) windowed to 8 bits.

PIL reads single-page 8-bit and 16-bit grey TIFFs; tifffile reads what PIL does not (16-bit RGB,
float, multi-sample, tiled, multi-page) and gives one page at a time. Pages are counted lazily up to
the limit: a TIFF of 10,000 pages is refused when listed with the number found, without reading
past the limit.
"""
from __future__ import annotations

import numpy as np

from .media_ref import MediaError, open_media
from .window import WindowError, to_rgb_array

TIFF_EXTENSIONS = {".tif", ".tiff"}
DEFAULT_MAX_TIFF_BYTES = 2 << 30


def _tifffile():
    try:
        import tifffile
    except ImportError:
        raise MediaError("reading multi-page and float TIFF needs tifffile: pip install 'wordsight[media]'") from None
    return tifffile


def _open(f):
    tifffile = _tifffile()
    try:
        return tifffile.TiffFile(f, name="image.tif")
    except Exception as e:  # tifffile raises TiffFileError, ValueError, struct.error... on broken files
        raise MediaError(f"not a readable TIFF file ({type(e).__name__}: {str(e)[:200]})") from None


def count_pages(source, max_pages: int, refuse: bool = True) -> tuple[int, tuple[int, int]]:
    """(pages, (width, height) of the first page), refused beyond ``max_pages`` (``refuse=False``:
    counting stops there, for a chosen page)."""
    with open_media(source, DEFAULT_MAX_TIFF_BYTES) as f, _open(f) as tif:
        n = 0
        try:
            page = tif.pages.first
            w, h = int(page.imagewidth), int(page.imagelength)
            for n, _ in enumerate(tif.pages, 1):
                if n >= max_pages and not refuse:
                    break
                if n > max_pages:
                    raise MediaError(f"more than {max_pages:,} pages, the limit of pages read from one TIFF "
                                     "(--max-pages); read one with --frame")
        except MediaError:
            raise
        except Exception as e:
            raise MediaError(f"cannot list the TIFF's pages ({type(e).__name__}: {str(e)[:200]})") from None
    return n, (int(w), int(h))


def decode_page(source, page: int = 0, window=None) -> np.ndarray:
    """Page ``page`` as H x W x 3 uint8 (grey repeated; planar samples moved last; high depth windowed)."""
    with open_media(source, DEFAULT_MAX_TIFF_BYTES) as f, _open(f) as tif:
        try:
            p = tif.pages[page]
            arr = p.asarray()
            if getattr(p, "planarconfig", 1) == 2 and arr.ndim == 3:  # planar: samples first
                arr = np.moveaxis(arr, 0, -1)
        except IndexError:
            raise MediaError(f"page {page} does not exist") from None
        except Exception as e:
            raise MediaError(f"cannot decode page {page} ({type(e).__name__}: {str(e)[:200]})") from None
    try:
        return to_rgb_array(arr, window)
    except WindowError as e:
        raise MediaError(f"page {page}: {e}") from None
