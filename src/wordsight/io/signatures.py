"""What a file is by its first bytes: an image, a video container or DICOM (signature sniffing).

One probe for every place that must tell media apart without trusting a name: uploads (the server
gets whatever name a client sends) and extension-less files in folders (hospital exports name
DICOM files ``IM0001`` or by their UID). Signatures are the formats' own (the container or file
magic of each specification); no decoder runs here, so a broken image is still an image.
"""
from __future__ import annotations

import os
import stat

DICOM_MAGIC_END = 132  # DICOM PS3.10 7.1: a 128-byte preamble, then "DICM"
DICOMDIR = "DICOMDIR"  # the index of a DICOM export (no pixels): never listed as an image

_IMAGE = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*",
          b"II+\x00", b"MM\x00+")
# Video containers: EBML (Matroska, WebM), MPEG program stream and MPEG-1/2 video, FLV, ASF (WMV), Ogg
_VIDEO = (b"\x1a\x45\xdf\xa3", b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3", b"FLV\x01",
          b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", b"OggS")
_MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")  # ISO BMFF / QuickTime: a box at byte 4
TS_PACKET = 188


def is_dicom(head: bytes) -> bool:
    return head[128:DICOM_MAGIC_END] == b"DICM"


def kind_of(head: bytes) -> str | None:
    """``dicom``, ``image``, ``video`` or None (unknown) from a file's first bytes (at least 132 for
    DICOM, 377 for an MPEG transport stream)."""
    if is_dicom(head):
        return "dicom"
    if head.startswith(_IMAGE) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    if head.startswith(_VIDEO) or head[4:8] in _MP4_BOXES or (head[:4] == b"RIFF" and head[8:12] == b"AVI "):
        return "video"
    if len(head) > 2 * TS_PACKET and head[0] == head[TS_PACKET] == head[2 * TS_PACKET] == 0x47:
        return "video"
    return None


def unnamed(name: str) -> bool:
    """A file name that says nothing of its format: no extension, or a numeric one (a UID such as
    ``1.2.840.113619.2.55.3.604688119.969.1268071029.320``)."""
    dot = name.rfind(".")
    return dot <= 0 or name[dot + 1:].isdigit()


def dicom_file(path) -> bool:
    """Whether ``path`` is a regular file with the DICOM magic at byte 128. Reads 132 bytes at most;
    anything else (a FIFO, a device, a dangling link, an unreadable file) is False, never blocks."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        fd = os.open(path, flags)
    except (OSError, ValueError):
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the stat
            return False
        head = os.read(fd, DICOM_MAGIC_END)
    except OSError:
        return False
    finally:
        os.close(fd)
    return is_dicom(head)
