"""Writing a saved folder: the files into a temporary sibling, then sealed (every file's sha256 and
the config's own checksum in the config) and swapped in for the target in one step.

The swap is ``renameat2(RENAME_EXCHANGE)`` on Linux: a process killed at any instant (``kill -9``
while overwriting a model) leaves either the old model or the new one at the target, never
neither and never a mix; the sibling it leaves behind is removed by the next save. Elsewhere the
old folder is moved aside for the instant between two renames, and put back by the next save if
the process died in between. A folder that is not empty and is not a saved wordsight folder (no
config of a ``wordsight-*`` format) is never written into: saving to ``~/photos`` by mistake is
refused, not swapped away.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from pathlib import Path

import numpy as np

from ..io.output_files import pid_alive
from ..io.safe_files import file_sha256
from .read import CONFIG, ModelFolderError, canonical, declared_format

TMP_MARK = ".wordsight-"  # ".<name>.wordsight-<pid>-<random>": a save in progress (or killed) beside <name>


def jsonable(v):
    """``v`` as JSON values (numpy scalars unwrapped, paths as text); None for what is not part
    of a saved model (e.g. a FeatureCache object)."""
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    return None


def seal(folder, config: dict, config_name: str = CONFIG) -> dict:
    """Write ``config`` into ``folder`` with ``files`` (the sha256 of every file in the folder,
    sub-folders included) and ``config_sha256`` (its own checksum) added; returns what was written."""
    folder = Path(folder)
    config = {k: v for k, v in config.items() if k not in ("files", "config_sha256")}
    config["files"] = {p.relative_to(folder).as_posix(): file_sha256(p) for p in sorted(folder.rglob("*"))
                       if p.is_file() and not p.is_symlink() and p.relative_to(folder).as_posix() != config_name}
    config["config_sha256"] = canonical(config)
    tmp = folder / (config_name + ".tmp")
    tmp.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(folder / config_name)
    return config


def write_folder(folder, write, *, config_name: str = CONFIG, replaces: tuple[str, ...] = ()) -> str:
    """Save into ``folder`` atomically: ``write(tmp)`` writes the object's files into a fresh
    temporary sibling and returns its config (no ``files``, no checksum); the folder is sealed
    (:func:`seal`) and swapped in whole, so nothing of an earlier save stays. An error or a kill
    before the swap leaves ``folder`` as it was. ``replaces``: the config names of other saved
    kinds this one may replace (a single export over an ensemble's)."""
    target = Path(os.path.abspath(folder))  # "model/", "." and "a/../model" each have a parent and a name
    check_target(target, (config_name, *replaces))
    target.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale(target)
    tmp = target.parent / f".{target.name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        seal(tmp, write(tmp), config_name)
        _sync(tmp)
        _swap(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # after an exchange: the old model
    return str(folder)


def check_target(folder, config_name: str | tuple[str, ...] = CONFIG, what: str = "saved wordsight folder") -> None:
    """Refuse a target that a save would not write: a link, a file, a folder that is not empty and
    not a saved wordsight folder (one of ``config_name`` of a ``wordsight-*`` format). Verbs call it
    before their work (``fit --out``: before training)."""
    names = [config_name] if isinstance(config_name, str) else list(config_name)
    folder = Path(os.path.abspath(folder))
    if folder.is_symlink():
        raise ModelFolderError(f"{folder}: is a symbolic link; save to a real folder (the link is not replaced)")
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: exists and is not a folder; not overwritten")
    entries = list(folder.iterdir())
    # a saved folder, or one that holds only saved folders (`fit --finetune` checkpoints into --out first)
    if entries and not _saved(folder, names) and not all(
            p.is_dir() and not p.is_symlink() and _saved(p, sorted(p.glob("*.json"))[:8]) for p in entries):
        raise ModelFolderError(f"{folder}: not empty and not a {what} (no {' or '.join(names)} of a "
                               "wordsight format); refusing to write over it: save to a new or empty folder")


def _saved(folder: Path, configs) -> bool:
    """Whether one of ``configs`` (names in ``folder``) declares a ``wordsight-*`` format."""
    for name in configs:
        try:
            fmt = declared_format(folder, Path(name).name)
        except ModelFolderError:
            continue
        if isinstance(fmt, str) and fmt.startswith("wordsight-"):
            return True
    return False


def _clear_stale(folder: Path) -> None:
    """Remove what a killed save left beside ``folder``; put back an old model moved aside (not
    on Linux) by a save killed between its two renames."""
    prefix = f".{folder.name}{TMP_MARK}"
    for p in folder.parent.iterdir():
        if not p.name.startswith(prefix):
            continue
        pid = p.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or pid_alive(int(pid)):
            continue  # another save in progress
        if p.name.endswith("-old") and not folder.exists():
            os.rename(p, folder)
        else:
            shutil.rmtree(p, ignore_errors=True)


def _sync(folder: Path) -> None:
    """Flush the new files to disk before the swap (a power cut then leaves a complete model too)."""
    for p in [*sorted(folder.rglob("*"), reverse=True), folder]:
        if p.is_symlink():
            continue
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        except OSError:
            pass  # a folder on a filesystem that cannot fsync folders
        finally:
            os.close(fd)


def _swap(tmp: Path, folder: Path) -> None:
    if not folder.exists():
        os.rename(tmp, folder)
    elif not _exchange(tmp, folder):
        old = tmp.with_name(tmp.name + "-old")
        os.rename(folder, old)
        os.rename(tmp, folder)
        os.rename(old, tmp)  # removed by the caller


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import errno

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))
