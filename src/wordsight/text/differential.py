"""Differential class descriptions (FuDD, Esfandiarpoor & Bach, ICLR 2024).

The zero-shot classifier's soft predictions on the user's unlabelled images say which classes
it confuses: an image whose two most probable classes are A and B counts for the pair (A, B).
For the most frequent pairs the language model is asked what tells A from B (and B from A); the
answers are added to A's and B's descriptions, marked with their source (``fudd:B``) so that
selection can weigh them and a person can read and edit them.

Every answer is cached on disk per (backend, prompt, seed, length) in the wordsight cache, so a
rerun, or another class set that shares a pair, asks the model nothing again.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from ._text import display_name
from .descriptions import DESCRIPTION_SYSTEM, clean_description
from .llm import LLMBackend, get_llm

# One question per answer slot, cycled; both ask for a visible trait of A that B lacks. Phrased
# for a 135M model: it answers the literal question better than a request for a list.
FUDD_PROMPTS = (
    "What visual features tell a {a} apart from a {b}? Answer in one short sentence about the {a}.",
    "A {a} and a {b} look alike. Describe in one short sentence what only a {a} has.",
)


def confused_pairs(proba, classes=None, top: int = 6, min_share: float = 0.02) -> list[tuple[int, int, int]]:
    """The class pairs a zero-shot classifier confuses, from its ``(N, C)`` probabilities on
    unlabelled images: ``[(a, b, count), ...]`` with ``a < b``, most frequent first (ties by
    class index), at most ``top`` of them, each the top-2 classes of at least ``min_share`` of
    the images. ``classes`` is unused except for its length check."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"confused_pairs needs (N, C>=2) probabilities, got shape {p.shape}")
    if classes is not None and len(classes) != p.shape[1]:
        raise ValueError(f"{len(classes)} classes but {p.shape[1]} probability columns")
    if len(p) == 0:
        return []
    # stable argsort of -p: among equal probabilities the lower class index comes first
    top2 = np.sort(np.argsort(-p, axis=1, kind="stable")[:, :2], axis=1)
    c = p.shape[1]
    counts = np.bincount(top2[:, 0] * c + top2[:, 1], minlength=c * c)
    order = np.argsort(-counts, kind="stable")
    need = max(1, int(np.ceil(min_share * len(p))))
    out = []
    for idx in order[:top]:
        n = int(counts[idx])
        if n < need:
            break
        out.append((int(idx // c), int(idx % c), n))
    return out


def answer_cache_path(backend: LLMBackend, prompt: str, seed: int, max_new_tokens: int, temperature: float):
    from ..features.cache import default_cache_dir

    blob = json.dumps({"llm": backend.describe(), "prompt": prompt, "seed": seed, "tokens": max_new_tokens,
                       "temperature": temperature, "system": DESCRIPTION_SYSTEM})
    return default_cache_dir() / "llm-answers" / f"{hashlib.sha256(blob.encode()).hexdigest()[:24]}.json"


def cached_answers(backend: LLMBackend, prompts: list[str], seeds: list[int], max_new_tokens: int = 40,
                   temperature: float = 0.7) -> list[str]:
    """One answer per (prompt, seed); answers already on disk are read back, the others are asked
    in one batch per seed and written (a failed write only costs the next run's time)."""
    answers: list[str | None] = [None] * len(prompts)
    paths = [answer_cache_path(backend, p, s, max_new_tokens, temperature) for p, s in zip(prompts, seeds)]
    for i, path in enumerate(paths):
        if path.is_file():
            try:
                answers[i] = str(json.loads(path.read_text(encoding="utf-8"))["answer"])
            except (OSError, ValueError, KeyError, TypeError):
                pass
    for seed in sorted({s for s, a in zip(seeds, answers) if a is None}):
        todo = [i for i, (s, a) in enumerate(zip(seeds, answers)) if a is None and s == seed]
        got = backend.generate([prompts[i] for i in todo], max_new_tokens=max_new_tokens, temperature=temperature,
                               seed=seed, system=DESCRIPTION_SYSTEM)
        for i, text in zip(todo, got):
            answers[i] = text
            try:
                paths[i].parent.mkdir(parents=True, exist_ok=True)
                tmp = paths[i].with_name(paths[i].name + f".tmp{os.getpid()}")
                tmp.write_text(json.dumps({"prompt": prompts[i], "answer": text}), encoding="utf-8")
                os.replace(tmp, paths[i])
            except OSError:
                pass
    return [a or "" for a in answers]


def differential_descriptions(classes, pairs, llm="local", k: int = 2, seed: int = 0, max_new_tokens: int = 40,
                              **llm_options) -> dict[str, list[dict]]:
    """``{class: [{"text", "weight", "source"}]}``: for every pair ``(a, b, ...)`` of class
    indices, ``k`` answers to "what tells a from b" for ``a`` and as many the other way round,
    cut to their first sentence (answers under three words or repeated are dropped)."""
    classes = [str(c) for c in classes]
    backend = get_llm(llm, **llm_options)
    out: dict[str, list[dict]] = {c: [] for c in classes}
    if getattr(backend, "name", "") == "none":
        return out
    asks = []
    for pair in pairs:
        a, b = int(pair[0]), int(pair[1])
        for x, y in ((a, b), (b, a)):
            for j in range(k):
                prompt = FUDD_PROMPTS[j % len(FUDD_PROMPTS)].format(a=display_name(classes[x]).lower(),
                                                                     b=display_name(classes[y]).lower())
                asks.append((x, y, prompt, seed + j // len(FUDD_PROMPTS)))
    answers = cached_answers(backend, [p for *_, p, _ in asks], [s for *_, s in asks], max_new_tokens)
    seen: dict[str, set] = {c: set() for c in classes}
    for (x, y, _, _), answer in zip(asks, answers):
        text = clean_description(answer)
        if len(text.split()) < 3 or text.lower() in seen[classes[x]]:
            continue
        seen[classes[x]].add(text.lower())
        out[classes[x]].append({"text": text, "weight": 1.0, "source": f"fudd:{classes[y]}"})
    return out
