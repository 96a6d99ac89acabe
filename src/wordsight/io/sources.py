"""Where images come from: a class-per-folder tree, a CSV/JSONL manifest, or a list of files.

A source is a list of :class:`Sample`. Problems found while listing (dangling links, unreadable
folders, bad manifest rows) are returned as :class:`Problem` so that they are reported beside the
decode failures instead of stopping the run.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .images import IMAGE_EXTENSIONS
from .label_sets import check_one_kind, check_same_kind, parse_label_set
from .media_listing import MEDIA_EXTENSIONS


@dataclass(frozen=True)
class Sample:
    """One image: a file ``path``, or in-memory ``data`` (uploads) named by ``path``."""

    path: str
    label: str | None = None
    text: str | None = None
    data: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str


@dataclass
class Source:
    samples: list[Sample]
    problems: list[Problem]

    @property
    def classes(self) -> list[str]:
        return sorted({s.label for s in self.samples if s.label is not None})

    @property
    def labels(self) -> list[str | None]:
        return [s.label for s in self.samples]

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.samples]


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__MACOSX")


def _is_image_name(name: str) -> bool:
    suffix = Path(name).suffix.lower()
    return suffix in IMAGE_EXTENSIONS or suffix in MEDIA_EXTENSIONS


def _is_listed_file(name: str, path) -> bool:
    """An image or media file by its name, or an extension-less DICOM file by its magic (132 bytes
    read; DICOMDIR, an export's index, and other extension-less files are skipped silently)."""
    from .signatures import DICOMDIR, dicom_file, unnamed

    return _is_image_name(name) or (name.upper() != DICOMDIR and unnamed(name) and dicom_file(path))


def _folder_id(path: Path, problems: list[Problem]):
    try:
        st = os.stat(path)
    except OSError as e:
        problems.append(Problem(str(path), f"cannot list folder: {e.strerror or e}"))
        return None
    return st.st_dev, st.st_ino


def _walk_images(root: Path, problems: list[Problem], seen: set | None = None) -> list[Path]:
    """Image files under ``root`` (sorted, depth first, hidden entries skipped, bad entries reported).

    Symlinked folders are followed, each real folder once: a link to a folder already listed (a
    loop such as ``sub/up -> ..``, or a second name for the same folder) is reported and skipped,
    so no image is listed twice and no walk runs forever. ``seen`` holds the (device, inode) of the
    folders listed so far (shared across the class folders of one tree).
    """
    seen = set() if seen is None else seen
    found: list[Path] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        key = _folder_id(folder, problems)
        if key is None:
            continue
        if key in seen:
            problems.append(Problem(str(folder), "a link to a folder already listed (a loop or a second name "
                                                 "for it): skipped"))
            continue
        seen.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            problems.append(Problem(str(folder), f"cannot list folder: {e.strerror or e}"))
            continue
        subfolders = []
        for e in entries:
            if _hidden(e.name):
                continue
            p = Path(folder) / e.name
            try:
                is_dir = e.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if _is_image_name(e.name):
                    problems.append(Problem(str(p), "a folder named like an image file, not an image: skipped"))
                else:
                    subfolders.append(p)
            elif _is_listed_file(e.name, p):
                if e.is_symlink() and not os.path.exists(p):
                    problems.append(Problem(str(p), "dangling link"))
                else:
                    found.append(p)  # not a regular file (FIFO, device): reading it reports why
        stack.extend(reversed(subfolders))
    return found


def from_folder(root: str | os.PathLike) -> Source:
    """ImageFolder layout (``root/<class>/<image>``) when ``root`` holds sub-folders with
    images; otherwise the images in ``root`` (recursively), unlabelled."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    problems: list[Problem] = []
    try:
        entries = sorted(root.iterdir())
    except OSError as e:
        raise FileNotFoundError(f"{root}: cannot list folder: {e.strerror or e}") from None
    class_dirs = []
    for d in entries:
        if _hidden(d.name) or not d.is_dir():
            continue
        if _is_image_name(d.name):
            problems.append(Problem(str(d), "a folder named like an image file, not an image: skipped"))
        else:
            class_dirs.append(d)
    samples: list[Sample] = []
    if class_dirs:
        root_id = _folder_id(root, problems)
        seen = {root_id} if root_id else set()
        for d in class_dirs:
            samples += [Sample(str(p), d.name) for p in _walk_images(d, problems, seen)]
        for p in entries:
            if _hidden(p.name) or p.is_dir() or not _is_listed_file(p.name, p):
                continue
            if p.is_symlink() and not p.exists():
                problems.append(Problem(str(p), "dangling link"))
            else:
                samples.append(Sample(str(p), None))
    else:  # a flat folder: the walk reports its folders named like images itself (once, not twice)
        problems = []
        samples = [Sample(str(p)) for p in _walk_images(root, problems)]
    return Source(samples, problems)


# Manifest fields: a text column may hold a long description, but not an unbounded one.
MAX_MANIFEST_FIELD = 1 << 20


def _row_label(row: dict, where: str):
    """A row's ``label``, or its ``labels`` as a label set (:mod:`.label_sets`; a bad one: a Problem)."""
    if "labels" not in row:
        return row.get("label")
    check_one_kind(row, where)
    try:
        return parse_label_set(row["labels"])
    except ValueError as e:
        return Problem(where, str(e))


def _manifest_row(row, where: str, base: Path) -> Sample | Problem:
    if not isinstance(row, dict):
        return Problem(where, f"row is a JSON {type(row).__name__}, not an object with a 'path'")
    path, label, text = row.get("path"), _row_label(row, where), row.get("text")
    if path is None or path == "":
        return Problem(where, "row has no 'path'")
    if not isinstance(path, str):
        return Problem(where, f"'path' must be a string, not {type(path).__name__}")
    if isinstance(label, (bool, Problem)) or not isinstance(label, (str, int, tuple, type(None))):
        return label if isinstance(label, Problem) else Problem(where, f"'label' must be a string, not "
                                                                       f"{type(label).__name__}")
    if text is not None and not isinstance(text, str):
        return Problem(where, f"'text' must be a string, not {type(text).__name__}")
    p = Path(path)
    p = p if p.is_absolute() else base / p
    label = None if label is None or label == "" else label if isinstance(label, tuple) else str(label)
    return Sample(str(p), label, text or None)


def _jsonl_rows(f, manifest: Path):
    """(line number, row or Problem) for each non-blank line; lines are numbered as an editor does."""
    for i, raw in enumerate(f, 1):
        try:
            line = raw.decode("utf-8-sig" if i == 1 else "utf-8")
        except UnicodeDecodeError as e:
            yield i, Problem(f"{manifest}:{i}", f"not UTF-8 text ({e.reason} at byte {e.start})")
            continue
        if not line.strip():
            continue
        if len(line) > MAX_MANIFEST_FIELD:
            yield i, Problem(f"{manifest}:{i}", f"line longer than {MAX_MANIFEST_FIELD:,} characters")
            continue
        try:
            yield i, json.loads(line)
        except json.JSONDecodeError as e:
            yield i, Problem(f"{manifest}:{i}", f"bad JSON line: {e.msg}")
        except RecursionError:
            yield i, Problem(f"{manifest}:{i}", "bad JSON line: nested too deeply")


def _csv_rows(f, manifest: Path):
    text = io.TextIOWrapper(f, encoding="utf-8-sig", newline="")
    old = csv.field_size_limit()
    csv.field_size_limit(MAX_MANIFEST_FIELD)
    try:
        reader = csv.DictReader(text)
        try:
            fields = reader.fieldnames
        except (csv.Error, UnicodeDecodeError) as e:
            raise ValueError(f"{manifest}:1: cannot read the CSV header ({e})") from None
        if not fields or "path" not in fields:
            raise ValueError(f"{manifest}: CSV manifest needs a header with a 'path' column "
                             f"(found {', '.join(map(repr, fields or []))})")
        check_one_kind(fields, manifest)
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as e:
                raise ValueError(f"{manifest}: not UTF-8 text after line {start - 1} ({e.reason}); fix the "
                                 "file's encoding") from None
            except csv.Error as e:
                yield start, Problem(f"{manifest}:{start}", f"bad CSV row: {e}")
                continue
            yield start, row
    finally:
        csv.field_size_limit(old)


def from_manifest(manifest: str | os.PathLike) -> Source:
    """CSV (header ``path,label[,text]`` or ``path,labels[,text]``: :mod:`.label_sets`) or JSONL
    (objects with those keys). Relative paths are
    taken relative to the manifest's folder. A bad row is reported with its line number and skipped."""
    from .safe_files import UnsafeFileError, open_regular

    manifest = Path(manifest)
    base = manifest.parent
    samples: list[Sample] = []
    problems: list[Problem] = []
    try:
        f = open_regular(manifest)
    except UnsafeFileError as e:
        raise FileNotFoundError(str(e)) from None
    with f:
        jsonl = manifest.suffix.lower() in (".jsonl", ".ndjson")
        for line, row in (_jsonl_rows(f, manifest) if jsonl else _csv_rows(f, manifest)):
            item = row if isinstance(row, Problem) else _manifest_row(row, f"{manifest}:{line}", base)
            (problems if isinstance(item, Problem) else samples).append(item)
    check_same_kind(samples, manifest)
    return Source(samples, problems)


def from_paths(paths) -> Source:
    """A plain list of image files (folders in it are expanded)."""
    samples, problems = [], []
    for p in map(Path, paths):
        if p.is_dir():
            sub = from_folder(p)
            samples += sub.samples
            problems += sub.problems
        elif p.is_symlink() and not p.exists():
            problems.append(Problem(str(p), "dangling link"))
        else:
            samples.append(Sample(str(p)))
    return Source(samples, problems)


def open_source(data, media=None) -> Source:
    """Anything a user may name: a Source, a folder, a manifest (.csv/.jsonl), a file or a list.
    Videos, DICOM files and multi-page TIFFs become the rows of their frames, chosen by ``media``
    (a :class:`~.media_options.MediaOptions`; None: the current ones, :func:`~.media_options.current_options`).
    A Source is taken as it is (already listed)."""
    if isinstance(data, Source):
        return data
    from .media_listing import expand_media
    from .media_options import current_options

    src = _open_source(data)
    src.samples = expand_media(src.samples, media or current_options(),
                               lambda path, reason: src.problems.append(Problem(path, reason)))
    return src


def _open_source(data) -> Source:
    if isinstance(data, (str, os.PathLike)):
        p = Path(data)
        if p.is_dir():
            return from_folder(p)
        if p.suffix.lower() in (".csv", ".jsonl", ".ndjson"):
            return from_manifest(p)
        if not p.exists() and not p.is_symlink():
            raise FileNotFoundError(f"{p}: no such file or folder")
        return from_paths([p])
    items = list(data)
    if items and all(isinstance(s, Sample) for s in items):
        return Source(items, [])
    return from_paths(items)
