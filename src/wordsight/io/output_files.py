"""Writing one output file (predictions, embeddings) so that readers only ever see a whole file.

The file is written under a name of its own beside the target (``.<name>.<pid>-<random>.part``:
two runs writing the same ``--out`` at once never share a temporary file) and renamed over the
target in one step when complete. A run that fails removes its temporary file; one killed with
``kill -9`` cannot, so the next write to the same target removes the temporary files of processes
that are no longer alive. :func:`check_output_file` refuses an unusable target before any work.
"""
from __future__ import annotations

import contextlib
import glob
import os
import secrets
from pathlib import Path

from .safe_files import file_kind

PART = ".part"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_output_file(path, formats: tuple[str, ...] | None = None) -> Path:
    """``path`` as a file to (over)write, checked before the work that fills it: its suffix one of
    ``formats``, not an existing folder or special file, its parent folder a folder (or absent)."""
    path = Path(path)
    if formats is not None and path.suffix.lower() not in formats:
        raise ValueError(f"{path}: output must end in {', '.join(formats)}")
    if path.exists() and not path.is_file():
        raise ValueError(f"{path}: exists and is {file_kind(os.stat(path).st_mode)}; the output must be a file "
                         "(not overwritten)")
    return _check_parent(path)


def check_output_folder(path) -> Path:
    """``path`` as a folder to write files into: absent (created later) or a folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: exists and is not a folder; the output is a folder (not overwritten)")
    return _check_parent(path)


def _check_parent(path: Path) -> Path:
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ValueError(f"{path}: {parent} is a file, not a folder; the output cannot be written there")
    return path


def _clear_stale(path: Path) -> None:
    prefix = f".{path.name}."
    for p in path.parent.glob(f"{glob.escape(prefix)}*{PART}"):
        pid = p.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            with contextlib.suppress(OSError):
                p.unlink()


@contextlib.contextmanager
def replaced_atomically(path):
    """Yield a fresh temporary path beside ``path``; on success rename it over ``path``, on an
    error remove it (and leave ``path`` as it was); an ``OSError`` writing it (a full disk)
    becomes a ``ValueError`` naming ``path``."""
    path = check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{PART}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a folder that became read-only: one line naming the output
        raise ValueError(f"{path}: cannot write the output ({e.strerror or e})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
