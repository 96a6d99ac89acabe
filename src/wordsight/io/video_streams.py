"""A video file's decoder kept open between the chunks of one run, so its sampled frames are decoded in one forward pass.

Extraction decodes a video a chunk of frames at a time (memory bounded by the chunk). Opening the
file again for each chunk and seeking to the key frame before the chunk's first frame re-decodes
that key frame's whole group of pictures: with a long GOP (x264's default key frame interval is
250 frames) every chunk paid for up to 250 frames it did not want. Here the decoder of the
previous chunk is handed to the next one (:meth:`Streams.take` / :meth:`Streams.give_back`),
which decodes on from where it stopped; a chunk whose frames lie behind the decoder, or further
ahead than a key frame interval seen in this file, seeks as before. A chunk that asks while the
chunk before it still decodes the same file waits for it (the decoder then stands just before its
frames) instead of decoding the same group of pictures again.

Memory: the decoder's own reference frames, per open file; at most :data:`MAX_OPEN` files are kept
open (least recently used closed first), and a decoder that reached the end of its file is closed.
Files are keyed by (path, device, inode, size, mtime): a file changed on disk is opened afresh.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict

MAX_OPEN = 2
WAIT_S = 60.0  # a chunk waits at most this long for the chunk before it (then opens the file itself)


def file_key(path) -> tuple | None:
    """The identity of a video file for :class:`Streams` (None: not a file on disk)."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return os.fspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class Streams:
    """Open decoders (``io.video.Cursor``) by file key, and the chunks decoding each file now."""

    def __init__(self, max_open: int = MAX_OPEN):
        self.max_open = max_open
        self._idle: OrderedDict = OrderedDict()  # path -> (file key, cursor)
        self._busy: dict = {}  # key -> the last wanted frame of each chunk decoding that file now
        self._cond = threading.Condition()

    def take(self, key, first: int, last: int):
        """The idle decoder of ``key`` (None: open one), after any chunk of the same file whose
        frames come before ``first`` has given it back; ``last`` is this chunk's last frame."""
        with self._cond:
            self._cond.wait_for(lambda: not any(end < first for end in self._busy.get(key, [])), timeout=WAIT_S)
            self._busy.setdefault(key, []).append(last)
            kept, cursor = self._idle.pop(key[0], (None, None))  # by path: a changed file's decoder goes
        if cursor is not None and kept != key:
            cursor.close()
            return None
        return cursor

    def give_back(self, key, cursor, last: int) -> None:
        """Keep ``cursor`` for the next chunk of its file (closed if it is finished or broken)."""
        closing = []
        with self._cond:
            ends = self._busy.get(key, [])
            if last in ends:
                ends.remove(last)
            if not ends:
                self._busy.pop(key, None)
            if cursor.reusable:
                old = self._idle.pop(key[0], None)
                if old is not None:
                    closing.append(old[1])
                self._idle[key[0]] = (key, cursor)
                while len(self._idle) > self.max_open:
                    closing.append(self._idle.popitem(last=False)[1][1])
            else:
                closing.append(cursor)
            self._cond.notify_all()
        for c in closing:
            c.close()

    def close_all(self) -> None:
        with self._cond:
            idle, self._idle = list(self._idle.values()), OrderedDict()
        for _, c in idle:
            c.close()

    def __len__(self) -> int:
        return len(self._idle)


STREAMS = Streams()
