"""The scans of a JPEG counted from its markers, before a byte of it is decoded.

A progressive JPEG is decoded scan by scan, and libjpeg walks every block of the image once per
scan however few bytes the scan holds: a 436 KB file of 6000x6000 pixels with 5,000 copies of its
last scan took 164 s to decode (one server upload kept the model busy for minutes). Encoders write
1 scan (baseline) or about 10 (libjpeg's progressive script; mozjpeg's optimised scripts stay
under 20), so a file with more than :data:`MAX_SCANS` is refused, and a large image's limit is
lower: the work is scans x pixels, bounded by :data:`MAX_SCAN_PIXELS` (100 scans up to 12 MP, 30
at 40 MP), never below :data:`MIN_SCANS`. Neither Pillow nor libjpeg-turbo
offers a scan limit through Pillow's API (djpeg's ``-maxscans`` is a command-line option), hence
this walk over the markers: the segment lengths are followed, so an EXIF thumbnail's or an ICC
profile's bytes are never mistaken for scans, and entropy-coded data is skipped with one regular
expression (0xFF is always followed there by 0x00 or a restart marker).
"""
from __future__ import annotations

import re

MAX_SCANS = 100
MIN_SCANS = 20  # what any encoder writes, whatever the image's size
MAX_SCAN_PIXELS = 1_200_000_000  # scans x pixels: about 1 s of decoding for 36 MP on one core

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
_NO_LENGTH = {0x01, *range(0xD0, 0xD8)}  # TEM and the restart markers stand alone
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")  # the end of entropy-coded data


def count_scans(data: bytes, stop_after: int | None = None) -> int:
    """The number of SOS markers in JPEG ``data`` (0 for data that is not a JPEG); counting stops
    once it passes ``stop_after``. Damaged structure ends the count where it is: the decoder then
    reports the damage."""
    if data[:2] != b"\xff\xd8":
        return 0
    scans, pos, n = 0, 2, len(data)
    while pos + 1 < n:
        if data[pos] != 0xFF:
            break
        while pos + 1 < n and data[pos + 1] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos + 1 >= n:
            break
        marker = data[pos + 1]
        pos += 2
        if marker == EOI:
            break
        if marker in _NO_LENGTH or marker == SOI:
            continue
        if pos + 2 > n:
            break
        pos += int.from_bytes(data[pos:pos + 2], "big")  # the length counts its own two bytes
        if marker == SOS:
            scans += 1
            if stop_after is not None and scans > stop_after:
                return scans
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                break
            pos = found.start()
    return scans


def scan_limit(pixels: int | None = None) -> int:
    """The most scans an image of ``pixels`` may have (:data:`MAX_SCANS` when unknown)."""
    if not pixels:
        return MAX_SCANS
    return max(MIN_SCANS, min(MAX_SCANS, MAX_SCAN_PIXELS // int(pixels)))


def check_scans(data: bytes, pixels: int | None = None) -> None:
    """Raise ``ValueError`` (its message says the limit and why) for a JPEG of more scans than
    :func:`scan_limit` allows an image of ``pixels``."""
    limit = scan_limit(pixels)
    scans = count_scans(data, stop_after=limit)
    if scans > limit:
        size = f" for {pixels:,} pixels" if limit < MAX_SCANS else ""
        raise ValueError(f"a progressive JPEG of more than {limit} scans (the limit{size}; encoders write at most "
                         "about 20): refused before decoding, as its decoding time grows with every scan")
