"""Reading a saved folder: only regular files, confined to the folder, size-bounded, checksums verified.

An attacker who knows the format can re-sign an edited folder with fresh checksums, so the
checksums guard against damage, not against a hostile author: the names in ``files`` are confined
(no ``..``, no absolute path, no link out of the folder), every read is of a regular file under a
size cap (a FIFO or ``/dev/zero`` linked in never blocks or fills memory), JSON nesting is bounded,
and files the config does not list are reported, never read. What the fields must hold is the
owning object's check (``models._folder_checks`` for a Classifier), run before any file is read.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from .._util.errors import WordsightError
from ..io.safe_files import UnsafeFileError, check_regular, confined, read_regular

CONFIG = "config.json"
MAX_CONFIG_BYTES = 8 << 20  # a config with a 1000-class prior is ~100 kB
MAX_FILE_BYTES = 2 << 30  # one listed file (an MLP head on 70k images is ~10 MB)
MAX_JSON_DEPTH = 32
MAX_EXTRA_REPORTED = 20
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".npy", ".npz", ".ckpt"}


class ModelFolderError(WordsightError):
    """A saved folder is missing, damaged, tampered with or incompatible."""


class ModelFolderWarning(UserWarning):
    """A saved folder holds files its config does not list."""


def canonical(config: dict) -> str:
    """The sha256 of ``config`` as canonical JSON (sorted keys, no spaces): the config's own checksum."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def parse_json(path: Path, data: bytes | None = None):
    """A JSON file (or its ``data``) parsed: a regular file of at most :data:`MAX_CONFIG_BYTES`, bounded depth."""
    if data is None:
        try:
            data = read_regular(path, MAX_CONFIG_BYTES)
        except UnsafeFileError as e:
            raise ModelFolderError(str(e)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelFolderError(f"{path}: not valid JSON (not UTF-8: {e.reason}); the file is damaged") from None
    depth = deepest = 0
    for ch in text:  # strings could hide brackets, which only makes this bound stricter
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise ModelFolderError(f"{path}: JSON nested {deepest} deep (a saved model is at most {MAX_JSON_DEPTH})")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelFolderError(f"{path}: not valid JSON ({e}); the file is damaged or truncated") from None


def _config_path(folder: Path, config_name: str) -> Path:
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: not a folder (a saved model is a folder with {config_name})")
    path = folder / config_name
    if not path.exists() and not path.is_symlink():
        raise ModelFolderError(f"{path}: missing; {folder} is not a saved wordsight model")
    return path


def declared_format(folder, config_name: str = CONFIG) -> str | None:
    """The ``format`` a folder's config declares (read bounded, not yet verified): what to load it as."""
    config = parse_json(_config_path(Path(folder), config_name))
    return config.get("format") if isinstance(config, dict) else None


def read_config(folder, formats, *, version: int, what: str, config_name: str = CONFIG,
                legacy: bool = False) -> dict:
    """The checked config of a saved folder: one of ``formats``, a version this wordsight reads,
    its own checksum right (``config_sha256`` removed). ``legacy``: a config written before
    checksums (no ``config_sha256``, maybe no ``format``) is accepted as it is."""
    folder = Path(folder)
    path = _config_path(folder, config_name)
    config = parse_json(path)
    fmt = config.get("format") if isinstance(config, dict) else None
    old = legacy and isinstance(config, dict) and "config_sha256" not in config
    if not isinstance(config, dict) or not (fmt in formats or (old and fmt is None)):
        if isinstance(fmt, str) and fmt.startswith("wordsight-"):
            raise ModelFolderError(f"{path}: the folder holds a {fmt}, not a wordsight {what}; "
                                   "load it with wordsight.load(folder), which reads every kind")
        raise ModelFolderError(f"{path}: not a wordsight {what} config (format {fmt!r})")
    saved = config.get("format_version", 1 if old else None)
    if not isinstance(saved, int) or isinstance(saved, bool) or saved > version:
        raise ModelFolderError(f"{path}: format version {saved!r} is newer than this wordsight reads "
                               f"({version}); upgrade wordsight (saved with {config.get('library_version')})")
    stored = config.pop("config_sha256", None)
    if not old and stored != canonical(config):
        raise ModelFolderError(f"{path}: checksum mismatch: the config was edited or damaged after saving")
    return config


@dataclass
class StoredFolder:
    """A folder whose config and listed files were verified; ``contents``: the checked bytes of
    every listed file (None for a folder written before checksums: files are then read, confined
    and bounded, on demand)."""

    path: Path
    config: dict
    config_name: str
    contents: dict[str, bytes] | None

    def read(self, name: str) -> bytes:
        """The checked bytes of listed file ``name``."""
        if self.contents is None:
            return _read(_listed(self.path, name, self.config_name))
        if name not in self.contents:
            raise ModelFolderError(f"{self.path / name}: not listed in {self.config_name}; the folder is incomplete")
        return self.contents[name]

    def arrays(self, name: str) -> dict:
        """The safetensors file ``name`` as numpy arrays, from its checked bytes."""
        from safetensors import SafetensorError
        from safetensors.numpy import load

        try:
            return load(self.read(name))
        except (SafetensorError, OSError) as e:
            raise ModelFolderError(f"{self.path / name}: cannot read safetensors ({e})") from None

    def json(self, name: str):
        """The listed JSON file ``name``, parsed from its checked bytes (bounded depth)."""
        return parse_json(self.path / name, self.read(name))


def read_folder(folder, formats, *, version: int, what: str, config_name: str = CONFIG, legacy: bool = False,
                check=None, ignore=frozenset()) -> StoredFolder:
    """Read and verify a saved folder (see the module doc). ``check(config, path)``: the owner's
    field checks, run before any file is read; ``ignore``: side files never reported as unlisted."""
    folder = Path(folder)
    config = read_config(folder, formats, version=version, what=what, config_name=config_name, legacy=legacy)
    path = folder / config_name
    if check is not None:
        check(config, path)
    files = config.get("files")
    if files is None and legacy:
        return StoredFolder(folder, config, config_name, None)
    if not isinstance(files, dict) or not all(isinstance(d, str) and len(d) == 64 for d in files.values()):
        raise ModelFolderError(f"{path}: field 'files' must map each file name to its sha256")
    contents = {}
    for name in files:
        data = _read(_listed(folder, name, config_name))
        if hashlib.sha256(data).hexdigest() != files[name]:
            raise ModelFolderError(f"{folder / name}: checksum mismatch (expected sha256 {files[name][:12]}...): "
                                   "the file was modified or truncated after saving")
        contents[name] = data
    report_unlisted(folder, files, config_name, ignore)
    return StoredFolder(folder, config, config_name, contents)


def _listed(folder: Path, name, config_name: str) -> Path:
    """``folder / name`` for a listed name: confined to the folder, a regular file under the cap."""
    try:
        p = confined(folder, name, "listed file")
        check_regular(p, MAX_FILE_BYTES)
    except UnsafeFileError as e:
        raise ModelFolderError(f"{e} (listed in {config_name})") from None
    return p


def _read(path: Path) -> bytes:
    try:
        return read_regular(path, MAX_FILE_BYTES)
    except UnsafeFileError as e:
        raise ModelFolderError(str(e)) from None


def report_unlisted(folder: Path, files: dict, config_name: str = CONFIG, ignore=frozenset()) -> list[str]:
    """Files in ``folder`` that its config does not list: warned about (pickles by name), never read."""
    listed = {Path(n).as_posix() for n in files} | {config_name, *ignore}
    extra = []
    for p in sorted(folder.rglob("*")):
        if len(extra) >= MAX_EXTRA_REPORTED:
            break
        try:
            rel = p.relative_to(folder).as_posix()
            if (p.is_symlink() or p.is_file()) and rel not in listed and not rel.endswith(".tmp"):
                extra.append(rel)
        except OSError:
            continue
    pickles = [x for x in extra if Path(x).suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        warnings.warn(f"{folder}: {', '.join(pickles)}: not part of the saved model (a pickle or other code-bearing "
                      "file); it is never loaded, but check where it came from", ModelFolderWarning, stacklevel=4)
    others = [x for x in extra if x not in pickles]
    if others:
        warnings.warn(f"{folder}: {', '.join(others)}: not listed in {config_name}; ignored", ModelFolderWarning,
                      stacklevel=4)
    return extra
