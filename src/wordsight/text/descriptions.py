"""Class descriptions, CuPL style: K short visual descriptions per class from a language model,
saved to a human-editable JSON file keyed by class name (never by position)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path

from ..io.datasets import folder_label_index
from ._text import display_name
from .llm import LLMBackend, get_llm
from .phrasing import shorten

# A few prompt templates (CuPL asks several differently worded questions per class).
DESCRIPTION_PROMPTS = (
    "Describe what a {name} looks like in one short sentence.",
    "How can you recognise a {name} in a photo? Answer in one short sentence.",
    "Describe the shape and parts of a {name} in one short sentence.",
)
DESCRIPTION_SYSTEM = "You write short, factual, visual descriptions of objects. Answer with one sentence."


class MissingClassesError(ValueError):
    """A descriptions file lacks some classes; ``missing`` lists them."""

    def __init__(self, message: str, missing: list[str]):
        super().__init__(message)
        self.missing = missing


# Characters a class description keeps: about 40 words, a long sentence.
DESCRIPTION_CHARS = 240


def clean_description(text: str, budget: int = DESCRIPTION_CHARS) -> str:
    """The first sentence of an LLM answer, without list markers, quotes or preambles, cut to
    ``budget`` characters at a clause boundary (never mid-word)."""
    text = (text or "").strip()
    while True:  # "Sure! Here is a description: ..." has two preambles
        stripped = re.sub(r"^(sure|certainly|of course|here is|here's)[^.:!\n]*[:.!]\s*", "", text, flags=re.I)
        if stripped == text:
            break
        text = stripped
    text = re.sub(r"^\s*(\d+[.)]|[-*•])\s*", "", text)
    text = text.strip().strip('"“”\'').strip()
    first = re.split(r"(?<=[.!?])\s|\n", text, maxsplit=1)[0].strip()
    return shorten(first, budget)


def generate_class_descriptions(classes, llm="local", k: int = 5, seed: int = 0, prompts=None,
                                max_new_tokens: int = 48, temperature: float = 0.7, max_rounds: int = 3,
                                **llm_options) -> dict[str, list[str]]:
    """``{class name: [k descriptions]}`` written by a language model.

    Prompts cycle through ``prompts`` (default :data:`DESCRIPTION_PROMPTS`); every prompt of every
    class goes to the backend in one call (batched). Answers are cut to their first sentence,
    too-short and repeated answers are dropped and asked again (up to ``max_rounds``), and the
    result depends only on (classes, backend, k, seed, prompts). With ``llm="none"`` every class
    gets an empty list (callers then use the class name alone).
    """
    classes = [str(c) for c in classes]
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    backend: LLMBackend = get_llm(llm, **llm_options)
    result: dict[str, list[str]] = {c: [] for c in classes}
    if getattr(backend, "name", "") == "none":
        return result
    prompts = tuple(prompts or DESCRIPTION_PROMPTS)
    seen: dict[str, set[str]] = {c: set() for c in classes}
    for rnd in range(max_rounds):
        asks = [(c, j) for c in classes for j in range(len(result[c]), k)]
        if not asks:
            break
        texts = [prompts[(j + rnd) % len(prompts)].format(name=display_name(c)) for c, j in asks]
        answers = backend.generate(texts, max_new_tokens=max_new_tokens, temperature=temperature,
                                   seed=seed + 7919 * rnd, system=DESCRIPTION_SYSTEM)
        for (c, _), answer in zip(asks, answers):
            d = clean_description(answer)
            key = d.lower()
            if len(d.split()) >= 3 and key not in seen[c] and len(result[c]) < k:
                seen[c].add(key)
                result[c].append(d)
    short = [c for c in classes if len(result[c]) < k]
    if short:
        warnings.warn(f"{backend.describe()}: only {min(len(result[c]) for c in short)}-{k - 1} usable "
                      f"descriptions for {len(short)} class(es) ({', '.join(short[:5])}) after {max_rounds} rounds",
                      stacklevel=2)
    return result


# A descriptions file is user-supplied: its size and contents are bounded before any work.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_CLASSES = 10_000
MAX_PER_CLASS = 256
MAX_TEXT_CHARS = 1000
# The one key of a descriptions file that is not a class name: how the file was made.
PROVENANCE_KEY = "_provenance"
# What one description may say about itself; ``score`` is the selection's measure (informative).
ENTRY_KEYS = {"text", "weight", "source", "score"}


def entry_text(entry) -> str:
    """The text of one description: a string, or ``{"text": ..., "weight": ..., "source": ...}``."""
    return entry["text"] if isinstance(entry, dict) else entry


def entry_weight(entry) -> float:
    """The weight of one description (1 for a plain string)."""
    return float(entry.get("weight", 1.0)) if isinstance(entry, dict) else 1.0


def save_class_descriptions(descriptions: dict, path, provenance: dict | None = None) -> Path:
    """Write ``{class: [descriptions]}`` as indented UTF-8 JSON (atomic replace). A description
    is a string or ``{"text", "weight", "source"}``; ``provenance`` (how the file was made) goes
    under :data:`PROVENANCE_KEY`."""
    path = Path(path)
    _validate(descriptions, str(path))
    data = dict(descriptions)
    if provenance:
        data[PROVENANCE_KEY] = provenance
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_descriptions_file(path) -> dict:
    """The ``{class: [descriptions]}`` of a file (its provenance left out): a regular file of at
    most :data:`MAX_FILE_BYTES`, checked entry by entry; errors name the file and the problem."""
    from ..io.safe_files import read_regular_text

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError(f"{path}: descriptions file not found")
    return parse_descriptions_json(read_regular_text(path, MAX_FILE_BYTES), str(path))


def parse_descriptions_json(text: str, where: str) -> dict:
    """``{class: [descriptions]}`` from JSON text (a file's, or a request's field), its provenance
    left out, checked entry by entry; errors start with ``where``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise ValueError(f"{where}: JSON nested too deeply") from None
    if isinstance(data, list):
        raise ValueError(f"{where}: descriptions must be an object keyed by class name, not a list "
                         "(a list would tie descriptions to class positions)")
    if not isinstance(data, dict):
        raise ValueError(f"{where}: descriptions must be an object {{class name: [descriptions]}}")
    data.pop(PROVENANCE_KEY, None)
    data = {k: [v] if isinstance(v, (str, dict)) else v for k, v in data.items()}
    _validate(data, where)
    return data


def load_class_descriptions(path, classes=None, missing: str = "error") -> dict[str, list]:
    """Read a descriptions file (``{class: [text, ...]}``; a single string is one description; a
    description may also be ``{"text", "weight", "source"}``, as ``wordsight describe-classes``
    writes them).

    With ``classes``: the result has exactly those keys, in that order (see
    :func:`descriptions_for`: folder spellings match, missing classes raise or get an empty list).
    """
    data = read_descriptions_file(path)
    return data if classes is None else descriptions_for(data, classes, missing=missing, where=str(path))


def descriptions_for(data: dict, classes, missing: str = "error", where: str = "descriptions") -> dict[str, list]:
    """``data``'s descriptions for exactly ``classes``, in that order. A class read from a folder
    matches its key's folder spelling (``T-shirt-top`` for ``T-shirt/top``). Classes without a key
    raise :class:`MissingClassesError` naming them (``missing="error"``) or get an empty list
    (``missing="empty"``); keys beyond ``classes`` are reported with a warning."""
    classes = [str(c) for c in classes]
    by_label = folder_label_index(data)
    key = {c: by_label.get(c) for c in classes}
    absent = [c for c in classes if key[c] is None]
    extra = [k for k in data if k not in set(key.values())]
    if extra:
        warnings.warn(f"{where}: {len(extra)} key(s) are not among the classes and are ignored: "
                      f"{', '.join(map(str, extra[:10]))}", stacklevel=3)
    if absent and missing == "error":
        raise MissingClassesError(f"{where}: no descriptions for {len(absent)} class(es): {', '.join(absent)}", absent)
    return {c: [] if key[c] is None else _as_list(data[key[c]]) for c in classes}


def _as_list(value) -> list:
    return [value] if isinstance(value, (str, dict)) else list(value)


def _validate(data, where: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: descriptions must be an object {{class name: [descriptions]}}")
    if len(data) > MAX_CLASSES:
        raise ValueError(f"{where}: {len(data):,} classes, more than the limit of {MAX_CLASSES:,}")
    for k, v in data.items():
        if not isinstance(v, list):
            raise ValueError(f"{where}: the value for {k!r} must be a list of strings (or {{\"text\": ...}} "
                             f"objects), got {type(v).__name__}")
        if len(v) > MAX_PER_CLASS:
            raise ValueError(f"{where}: {k!r} has {len(v):,} descriptions, more than the limit of {MAX_PER_CLASS}")
        for x in v:
            _validate_entry(x, k, where)


def _validate_entry(x, cls, where: str) -> None:
    if isinstance(x, dict):
        unknown = set(x) - ENTRY_KEYS
        if unknown:
            raise ValueError(f"{where}: a description of {cls!r} has unknown key(s) {', '.join(sorted(unknown))} "
                             "(allowed: text, weight, source, score)")
        weight = x.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1e6:
            raise ValueError(f"{where}: a description of {cls!r} has weight {weight!r}; "
                             "weights are numbers from 0 (dropped) up")
        if not isinstance(x.get("score", 0.0), (int, float)) or isinstance(x.get("score"), bool):
            raise ValueError(f"{where}: a description of {cls!r} has a score that is not a number")
        if not isinstance(x.get("source", ""), str) or len(x.get("source", "")) > MAX_TEXT_CHARS:
            raise ValueError(f"{where}: a description of {cls!r} has a source that is not a short string")
        x = x.get("text")
    if not isinstance(x, str):
        raise ValueError(f"{where}: the descriptions of {cls!r} must be strings or {{\"text\": ...}} objects, "
                         f"got {type(x).__name__}")
    if len(x) > MAX_TEXT_CHARS:
        raise ValueError(f"{where}: a description of {cls!r} has {len(x):,} characters, more than the limit "
                         f"of {MAX_TEXT_CHARS}")


def descriptions_cache_path(classes, llm: LLMBackend, k: int, seed: int) -> Path:
    """Where generated descriptions for (classes, backend, k, seed) are kept between runs."""
    from ..features.cache import default_cache_dir

    blob = json.dumps({"classes": list(classes), "llm": llm.describe(), "k": k, "seed": seed,
                       "prompts": DESCRIPTION_PROMPTS})
    return default_cache_dir() / "class-descriptions" / f"{hashlib.sha256(blob.encode()).hexdigest()[:20]}.json"


def cached_class_descriptions(classes, llm="local", k: int = 5, seed: int = 0, **llm_options) -> dict[str, list[str]]:
    """:func:`generate_class_descriptions`, read back from the wordsight cache when it was
    already generated for the same (classes, backend, k, seed)."""
    backend = get_llm(llm, **llm_options)
    if backend.name == "none":
        return {str(c): [] for c in classes}
    path = descriptions_cache_path([str(c) for c in classes], backend, k, seed)
    if path.exists():
        try:
            return load_class_descriptions(path, classes)
        except ValueError:
            pass
    result = generate_class_descriptions(classes, backend, k=k, seed=seed)
    try:
        save_class_descriptions(result, path)
    except OSError:
        pass
    return result
