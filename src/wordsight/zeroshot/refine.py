"""Class descriptions that discriminate: generate, refine on the user's images, select.

:func:`describe_classes` is what ``wordsight describe-classes`` runs:

1. **generate** (or start from a user's file): the class name, the prompt templates filled with
   it, and K LLM descriptions per class, each an entry ``{"text", "weight", "source"}``;
2. **refine** (FuDD): read the images, find the class pairs the zero-shot pipeline confuses on
   them (:func:`~wordsight.text.differential.confused_pairs`) and add the LLM's answers to
   "what tells A from B" to A and B (:func:`~wordsight.text.differential.differential_descriptions`);
3. **select**: score every text by how well it separates its class on the images
   (:mod:`~wordsight.text.description_weights`) with the images' labels when they have them
   (``labels``) or the pipeline's pseudo-labels (``pseudo``), and set weight 0 on the texts that
   do not (``none``: every weight stays 1).

The result is ``{class: [entries]}``: editable JSON keyed by class name that ``zeroshot`` and
``fit`` read with ``--class-descriptions`` (a text's weight scales its share of the class's mean
embedding; weight 0 leaves it out).
"""
from __future__ import annotations

import numpy as np

from ..io.datasets import folder_label_index
from ..text._text import display_name
from .text_classifier import DEFAULT_TEMPLATES

SELECT_CHOICES = ("auto", "labels", "pseudo", "none")


def base_entries(classes, descriptions=None, llm="local", k: int = 5, seed: int = 0, names: bool = True,
                 templates: bool = True, llm_options: dict | None = None) -> dict[str, list[dict]]:
    """Per class: its name, the templates with it, then its descriptions (``descriptions``,
    a ``{class: [texts or entries]}`` dict, else written by ``llm``); repeated texts once."""
    from ..text.descriptions import cached_class_descriptions, entry_text

    classes = [str(c) for c in classes]
    if descriptions is None:
        descriptions = cached_class_descriptions(classes, llm, k=k, seed=seed, **(llm_options or {}))
        given = {c: [{"text": t, "source": "llm"} for t in descriptions.get(c, [])] for c in classes}
    else:
        given = {c: [d if isinstance(d, dict) else {"text": d, "source": "user"} for d in descriptions.get(c, [])]
                 for c in classes}
    out = {}
    for c in classes:
        name = display_name(c)
        entries = ([{"text": name, "source": "name"}] if names else []) + \
                  ([{"text": t.format(name), "source": "template"} for t in DEFAULT_TEMPLATES] if templates else []) + \
                  [dict(e) for e in given[c]]
        seen, out[c] = set(), []
        for e in entries:
            key = entry_text(e).strip().lower()
            if key and key not in seen:
                seen.add(key)
                out[c].append({"text": entry_text(e).strip(), "weight": float(e.get("weight", 1.0)),
                               "source": e.get("source", "user")})
    return out


def add_entries(pool: dict[str, list[dict]], more: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """``pool`` with ``more``'s entries appended (texts it has already are skipped)."""
    out = {c: list(v) for c, v in pool.items()}
    for c, entries in more.items():
        have = {e["text"].strip().lower() for e in out.get(c, [])}
        for e in entries:
            if e["text"].strip().lower() not in have:
                have.add(e["text"].strip().lower())
                out.setdefault(c, []).append(dict(e))
    return out


def image_labels(labels, classes) -> np.ndarray | None:
    """Class indices of labelled images (folder names match a class, ``/`` written ``-``), or
    None when any image lacks a class label."""
    by_label = folder_label_index(classes)
    if labels is None or not len(labels) or any(lab not in by_label for lab in labels):
        return None
    position = {c: i for i, c in enumerate(map(str, classes))}
    return np.asarray([position[by_label[lab]] for lab in labels], dtype=np.int64)


def _all_ones(pool):
    return {c: [dict(e, weight=1.0) for e in v] for c, v in pool.items()}


def _fit(pipeline, pool, reading):
    pipeline.descriptions = pool
    return pipeline.fit(reading=reading, view=pipeline.view_)


def describe_classes(classes, images=None, *, reading=None, labels=None, descriptions=None, llm="local",
                     llm_options: dict | None = None, k: int = 5, seed: int = 0, names: bool = True,
                     templates: bool = True, pairs: int = 6, fudd_k: int = 2, select: str = "auto",
                     keep: float | None = None, pipeline=None) -> tuple[dict[str, list[dict]], dict]:
    """``({class: [{"text", "weight", "source", "score"?}]}, provenance)``: see the module doc.

    ``images``: the user's images (a folder, manifest or list) or ``reading`` (the arrays
    :meth:`ZeroShotPipeline.reading` returns, with ``labels`` as class indices or names when
    known) with ``pipeline`` fitted's view; without either only step 1 runs. ``pairs``: how many
    confused pairs get differential descriptions (0: none), ``fudd_k`` answers per direction.
    """
    from ..text.description_weights import DEFAULT_KEEP, selection_weights, separation_scores
    from ..text.descriptions import entry_weight
    from ..text.differential import confused_pairs, differential_descriptions
    from ..text.llm import get_llm
    from .pipeline import ZeroShotPipeline

    if select not in SELECT_CHOICES:
        raise ValueError(f"select must be one of {', '.join(SELECT_CHOICES)}, not {select!r}")
    classes = [str(c) for c in classes]
    keep = DEFAULT_KEEP if keep is None else float(keep)
    backend = get_llm(llm, **(llm_options or {}))
    pool = base_entries(classes, descriptions, backend, k=k, seed=seed, names=names, templates=templates)
    provenance = {"made_by": "wordsight describe-classes", "llm": backend.describe(), "k": k, "seed": seed,
                  "steps": ["names" if names else None, "templates" if templates else None,
                            "llm" if descriptions is None else "given"]}
    provenance["steps"] = [s for s in provenance["steps"] if s]
    if images is None and reading is None:
        return pool, provenance

    pipeline = pipeline or ZeroShotPipeline(classes, method="descriptions")
    if reading is None:
        from ..features.views import choose_view_of_samples
        from ..io.sources import open_source

        source = open_source(images)
        view = pipeline.view if pipeline.view != "auto" else choose_view_of_samples(source.samples)
        pipeline.view_ = view
        fs = pipeline.read(source)
        if not fs.samples:
            raise ValueError("describe-classes: none of the images could be read")
        reading, labels = pipeline.reading(fs), fs.labels
    elif not hasattr(pipeline, "view_"):
        pipeline.view_ = pipeline.view if pipeline.view != "auto" else "plain"
    y = labels if labels is None or np.asarray(labels).dtype.kind in "iu" else image_labels(list(labels), classes)
    provenance.update(images=int(len(reading["embedding"])), view=pipeline.view_)

    # 2. refine: differential descriptions for the pairs the pipeline confuses on these images
    if pairs > 0 and backend.name != "none":
        proba = np.exp(_fit(pipeline, _all_ones(pool), reading).log_proba_reading(reading))
        found = confused_pairs(proba, classes, top=pairs)
        provenance["pairs"] = [[classes[a], classes[b], n] for a, b, n in found]
        pool = add_entries(pool, differential_descriptions(classes, found, backend, k=fudd_k, seed=seed))
        provenance["steps"].append("fudd")

    # 3. select
    mode = select if select != "auto" else ("labels" if y is not None else "none")
    if mode == "labels" and y is None:
        raise ValueError("select='labels' needs images labelled with the class names (a folder per class)")
    if mode != "none":
        fitted = _fit(pipeline, _all_ones(pool), reading)
        targets = y if mode == "labels" else np.exp(fitted.log_proba_reading(reading))
        ways = list(fitted.ways_.values())
        views = [zs._check(pipeline.vectors(reading, w)) for w, zs in fitted.ways_.items()]
        scores = separation_scores(ways[0].text_embeddings_, ways[0].text_owner_, views, targets)
        weights = selection_weights(scores, ways[0].text_owner_, keep)
        flat = [e for c in classes for e in pool[c]]
        if len(flat) != len(scores):  # the classifier keeps every non-empty entry, in order
            raise RuntimeError(f"{len(flat)} entries but {len(scores)} scored texts")
        for e, s, w in zip(flat, scores, weights):
            e.update(weight=float(w), score=round(float(s), 4))
        provenance.update(selection=mode, keep=keep,
                          kept=int(sum(entry_weight(e) > 0 for e in flat)), texts=len(flat))
        provenance["steps"].append(f"select:{mode}")
    return pool, provenance
