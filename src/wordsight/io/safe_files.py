"""Opening files that someone else may have put there: regular files only, sizes bounded, names confined.

A FIFO named ``x.jpg`` would block ``open`` forever, ``/dev/zero`` linked as ``z.jpg`` would be
read until memory runs out, and a model folder's ``files`` entry ``../../etc/passwd`` would read
outside the folder. Every file wordsight reads from a folder or a list a user (or an attacker)
wrote goes through :func:`read_regular` or :func:`open_regular`: the path is ``stat``-ed first,
opened with ``O_NONBLOCK`` (so that a FIFO swapped in after the ``stat`` cannot block either),
checked again with ``fstat`` on the open descriptor, and read up to ``max_bytes``.
"""
from __future__ import annotations

import io
import os
import stat
from pathlib import Path


class UnsafeFileError(ValueError):
    """A path that is not a regular file, is too large, or leaves its folder; ``str`` says which and why."""


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words ("a FIFO", "a character device", ...)."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def _not_regular(path, mode: int) -> UnsafeFileError:
    if stat.S_ISDIR(mode):
        return UnsafeFileError(f"{_describe(path)}: is a folder, not a file")
    return UnsafeFileError(f"{_describe(path)}: is {file_kind(mode)}, not a regular file")


def _describe(path) -> str:
    return os.fsdecode(path) if isinstance(path, bytes) else str(path)


def check_regular(path, max_bytes: int | None = None) -> os.stat_result:
    """``os.stat`` of ``path`` (links followed) if it is a regular file within ``max_bytes``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        why = "dangling link" if os.path.islink(path) else "file not found"
        raise UnsafeFileError(f"{_describe(path)}: {why}") from None
    except (OSError, ValueError) as e:  # ValueError: an embedded NUL byte
        raise UnsafeFileError(f"{_describe(path)}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st.st_mode)
    if max_bytes is not None and st.st_size > max_bytes:
        raise UnsafeFileError(f"{_describe(path)}: {st.st_size:,} bytes, more than the limit of {max_bytes:,}")
    return st


def open_regular(path, max_bytes: int | None = None) -> io.BufferedReader:
    """A binary file object for ``path``, which must be a regular file of at most ``max_bytes``."""
    check_regular(path, max_bytes)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise UnsafeFileError(f"{_describe(path)}: cannot read: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)  # the file actually opened: it may have been swapped since the stat
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path, st.st_mode)
        if max_bytes is not None and st.st_size > max_bytes:
            raise UnsafeFileError(f"{_describe(path)}: {st.st_size:,} bytes, more than the limit of {max_bytes:,}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # a regular file: plain blocking reads from here on
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path, max_bytes: int | None = None) -> bytes:
    """The bytes of regular file ``path``; refused when larger than ``max_bytes`` (also when it
    grows while being read)."""
    with open_regular(path, max_bytes) as f:
        data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise UnsafeFileError(f"{_describe(path)}: more than the limit of {max_bytes:,} bytes")
    return data


def read_regular_text(path, max_bytes: int, encoding: str = "utf-8") -> str:
    data = read_regular(path, max_bytes)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise UnsafeFileError(f"{_describe(path)}: not {encoding} text ({e.reason} at byte {e.start})") from None


def file_sha256(path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (the checksums of saved model folders)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def confined(folder, name, what: str = "file") -> Path:
    """``folder / name`` for a relative ``name`` that stays inside ``folder``: no absolute path, no
    ``..``, no link that leads out. ``what`` names the entry in the error."""
    folder = Path(folder)
    if not isinstance(name, str) or not name or "\x00" in name:
        raise UnsafeFileError(f"{folder}: {what} {name!r} is not a file name")
    rel = Path(name)
    if rel.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeFileError(f"{folder}: {what} {name!r} is an absolute path; only names inside the folder "
                              "are allowed")
    if any(part == ".." for part in name.replace("\\", "/").split("/")):
        raise UnsafeFileError(f"{folder}: {what} {name!r} leaves the folder ('..')")
    path = folder / rel
    try:
        inside = path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError) as e:  # RuntimeError: a link loop
        raise UnsafeFileError(f"{folder}: {what} {name!r} cannot be resolved ({e})") from None
    if not inside:
        raise UnsafeFileError(f"{folder}: {what} {name!r} is a link that leads out of the folder")
    return path


def display_path(path) -> str:
    """A path as text that any UTF-8 sink accepts: undecodable bytes of a file name (kept by
    Python as lone surrogates) are shown as ``\\xNN`` escapes."""
    s = os.fspath(path) if not isinstance(path, str) else path
    if isinstance(s, bytes):
        s = os.fsdecode(s)
    try:
        raw = s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no file name produced (e.g. from JSON)
        return s.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")
