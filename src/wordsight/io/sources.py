"""Where images come from: a class-per-folder tree, a CSV/JSONL manifest, or a list of files.

A source is a list of :class:`Sample`. Problems found while listing (dangling links, unreadable
folders, bad manifest rows) are returned as :class:`Problem` so that they are reported beside the
decode failures instead of stopping the run.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .images import IMAGE_EXTENSIONS


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


def _walk_images(root: Path, problems: list[Problem]) -> list[Path]:
    """Image files under ``root`` (sorted, hidden entries skipped, bad links reported)."""
    found: list[Path] = []

    def onerror(err: OSError):
        problems.append(Problem(str(err.filename), f"cannot list folder: {err.strerror}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
        for name in sorted(filenames):
            if _hidden(name) or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            p = Path(dirpath) / name
            if p.is_symlink() and not p.exists():
                problems.append(Problem(str(p), "dangling link"))
                continue
            found.append(p)
    return found


def from_folder(root: str | os.PathLike) -> Source:
    """ImageFolder layout (``root/<class>/<image>``) when ``root`` holds sub-folders with
    images; otherwise the images in ``root`` (recursively), unlabelled."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    problems: list[Problem] = []
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not _hidden(d.name))
    samples: list[Sample] = []
    if class_dirs:
        for d in class_dirs:
            samples += [Sample(str(p), d.name) for p in _walk_images(d, problems)]
        for p in sorted(root.iterdir()):
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not _hidden(p.name):
                samples.append(Sample(str(p), None))
    else:
        samples = [Sample(str(p)) for p in _walk_images(root, problems)]
    return Source(samples, problems)


def from_manifest(manifest: str | os.PathLike) -> Source:
    """CSV (header ``path,label[,text]``) or JSONL (objects with those keys). Relative paths are
    taken relative to the manifest's folder."""
    manifest = Path(manifest)
    base = manifest.parent
    rows: list[dict] = []
    problems: list[Problem] = []
    with open(manifest, encoding="utf-8", newline="") as f:
        if manifest.suffix.lower() in (".jsonl", ".ndjson"):
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    problems.append(Problem(f"{manifest}:{i}", f"bad JSON line: {e.msg}"))
        else:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                raise ValueError(f"{manifest}: CSV manifest needs a header with a 'path' column")
            rows = list(reader)
    samples = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not row.get("path"):
            problems.append(Problem(f"{manifest}:{i}", "row has no 'path'"))
            continue
        p = Path(row["path"])
        p = p if p.is_absolute() else base / p
        label = row.get("label") or None
        samples.append(Sample(str(p), None if label is None else str(label), row.get("text") or None))
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


def open_source(data) -> Source:
    """Anything a user may name: a Source, a folder, a manifest (.csv/.jsonl), a file or a list."""
    if isinstance(data, Source):
        return data
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
