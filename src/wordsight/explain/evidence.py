"""The words behind a prediction.

- ``concepts``: the ImageNet concepts the image resembles (the language layer's vocabulary), with
  their probabilities, short descriptions, their similarity in the text space to the explained
  class's texts and, for a linear head over a text block, their exact share of the class score;
- ``descriptors``: the explained class's texts (its name and descriptions) ranked by cosine
  similarity to the image's ConSE semantic vector;
- ``parts``: for fused models, how much of the decision comes from the image block(s) and from the
  text part (the text block, or the zero-shot prior). A part's contribution is the change in the
  class's margin (its score minus the mean score over classes: softmax depends on nothing else)
  when the part is replaced by its training mean; for linear heads these add up exactly;
- ``sentence``: optional, one or two sentences an LLM writes from the facts above and nothing else.
"""
from __future__ import annotations

import numpy as np

from ._pipeline import ClassifierSubject, Subject, View, _py


def _margin(z: np.ndarray, c: int) -> float:
    return float(z[c] - z.mean())


def class_texts(model, cls) -> list[str]:
    """The texts that stand for a class: its name, then any descriptions (the Classifier's
    ``class_descriptions``, else the zero-shot classifier's)."""
    from ..text._text import display_name

    texts = [display_name(cls)]
    sources = [getattr(model.fusion_, "descriptions", None)]
    zs = getattr(model, "prior_", None) if hasattr(model, "state_") else None
    for attr in ("class_texts_", "descriptions_", "descriptions"):
        sources.append(getattr(zs, attr, None))
    for src in sources:
        if isinstance(src, dict):
            d = src.get(cls, src.get(str(cls)))
            if d:
                texts += [d] if isinstance(d, str) else [str(x.get("text", "")) if isinstance(x, dict) else str(x)
                                                         for x in d]
                break
    return list(dict.fromkeys(t for t in texts if t))


def evidence(subject: Subject, view: View, proba: np.ndarray, target: int, top: int = 5) -> dict:
    """JSON-able evidence for class index ``target`` of the image of ``view``; ``proba``: the
    model's probabilities of it (:meth:`Subject.proba`). A trained model's words come from its own
    reading of the image (:meth:`Subject.reading`), the one its predictions come from."""
    if hasattr(subject, "members"):  # an ensemble (explain.ensemble_subject)
        return ensemble_evidence(subject, view, proba, target, top)
    classes = subject.classes
    order = np.argsort(-proba)[:top]
    out = {
        "predicted": _py(classes[int(np.argmax(proba))]),
        "target": _py(classes[target]),
        "probability": float(proba[target]),
        "top_k": [[_py(classes[j]), float(proba[j])] for j in order],
        "concepts": [], "descriptors": [], "parts": None, "sentence": None,
    }
    if not isinstance(subject, ClassifierSubject):
        out["parts"] = {"image": {"contribution": None, "share": 1.0}}
        from ..text.concepts import imagenet_concepts, short_description

        names, descs = imagenet_concepts()
        out["concepts"] = [{"name": names[j], "probability": float(proba[j]),
                            "description": short_description(descs[j])} for j in order]
        return out
    model = subject.model
    fz = subject.reading(view)
    blocks = fz.blocks
    X = fz.matrix.astype(np.float64)
    probs = blocks.probs
    bank = subject.bank() if probs is not None else None
    semantic = None
    if probs is not None:
        from ..text.semantic import semantic_vectors, top_concepts

        semantic = semantic_vectors(probs, bank=bank)[0]
        texts = class_texts(model, classes[target])
        from ..text._text import embed_texts

        T = embed_texts(texts, bank.text_model)
        scores = T @ semantic
        out["descriptors"] = sorted(({"text": t, "score": float(s)} for t, s in zip(texts, scores)),
                                    key=lambda d: -d["score"])
        short = dict(zip(bank.names, bank.short))
        index = {n: i for i, n in enumerate(bank.names)}
        from ..text.phrasing import concept_threshold

        sure = concept_threshold(blocks.probs_encoder)  # below it a concept is not put into words
        for name, p in top_concepts(probs, bank, top)[0]:
            e = bank.embeddings[index[name]]
            out["concepts"].append({"name": name, "probability": p, "description": short.get(name) or "",
                                    "similarity_to_class": float((T @ e).max()), "listed": p >= sure})
        _concept_contributions(model, probs[0], bank, X[0], target, out["concepts"])
    out["parts"] = _parts(model, X[0], fz.prior_logits, target)
    return out


def ensemble_evidence(subject, view: View, proba: np.ndarray, target: int, top: int = 5) -> dict:
    """The words for an ensemble: the image's concepts and the class's texts (read off the first
    member: they do not depend on the head), the ensemble's top-k, and each member's say (its
    ``predict_proba`` of the image)."""
    parts = [m.proba(view)[None] for m in subject.members]
    out = evidence(subject.members[0], view, parts[0][0], target, top)
    classes = subject.classes
    order = np.argsort(-proba)[:top]
    out.update(predicted=_py(classes[int(np.argmax(proba))]), target=_py(classes[target]),
               probability=float(proba[target]), top_k=[[_py(classes[j]), float(proba[j])] for j in order])
    model = subject.model
    out["parts"] = {"ensemble": model.kind, "members": [
        {"member": name, "weight": float(w), "probability": float(p[0, target]),
         "predicted": _py(classes[int(np.argmax(p[0]))])}
        for name, w, p in zip(model.describe_members(), model.weights, parts)]}
    return out


def _concept_contributions(model, p: np.ndarray, bank, x: np.ndarray, target: int, concepts: list) -> None:
    """Exact per-concept terms of the class margin for a linear head over a text block."""
    from ..estimator.heads import LinearHead
    from ..text.semantic import conse_weights

    if not model.fusion_.text or not isinstance(model.head_, LinearHead):
        return
    block = next(b for b in model.pipeline_spec()["blocks"] if b["name"] == "text")
    W, _ = model.linear_head()
    Wt = W[:, block["start"]:block["stop"]]
    w = Wt[target] - Wt.mean(0)
    weights = conse_weights(p[None])[0]
    idx = np.flatnonzero(weights)
    pt = weights[idx]
    raw = pt @ bank.embeddings[idx]
    scale = float(model.fusion_.text_weight) / max(float(np.linalg.norm(raw)), 1e-12)
    terms = {bank.names[j]: float(scale * q * (bank.embeddings[j] @ w)) for j, q in zip(idx, pt)}
    for c in concepts:
        c["contribution"] = terms.get(c["name"], 0.0)


def _baseline(model, x: np.ndarray) -> np.ndarray | None:
    """The head's training mean of the fused row; columns the head does not read (the late
    fusion's own-text block, read by its text head) keep the image's values."""
    a = model.head_.arrays
    if "mean" in a:
        base = np.asarray(a["mean"], np.float64)
    elif "train" in a:
        base = np.asarray(a["train"], np.float64).mean(0)
    else:
        return None
    return np.concatenate([base, x[len(base):]])


def _parts(model, x: np.ndarray, prior_logits, target: int) -> dict:
    """Image vs text shares of the decision (see the module docstring)."""
    spec = model.pipeline_spec()
    base = _baseline(model, x)
    contrib: dict[str, float] = {}
    if base is None:
        keys = ["image"] + (["text"] if model.fusion_.text or model.fusion_.prior else [])
        return {"note": f"the {model.head_name!r} head keeps no training mean to compare with",
                **{k: {"contribution": None, "share": None} for k in keys}}

    state = model.state_

    def z(v):  # the model's log-probabilities (a late fusion's text head included)
        return state.logits(v[None], None)[0]

    if state.mix is not None and prior_logits is not None:
        # the model's own mixed scores; the image part is the change from the training mean, the
        # prior's part the change from a uniform prior (which adds nothing to any class)
        p = np.asarray(prior_logits[:1], np.float64)

        def mixed(v, q):
            return state.logits(v[None], q)[0]

        full = _margin(mixed(x, p), target)
        contrib["image"] = full - _margin(mixed(base, p), target)
        contrib["text"] = full - _margin(mixed(x, np.zeros_like(p)), target)
    else:
        m = _margin(z(x), target)
        for b in spec["blocks"]:
            v = x.copy()
            v[b["start"]:b["stop"]] = base[b["start"]:b["stop"]]
            part = "image" if b["name"].startswith("image") else "text"  # ConSE or the image's own text
            contrib[part] = contrib.get(part, 0.0) + (m - _margin(z(v), target))
    total = sum(abs(v) for v in contrib.values()) or 1.0
    return {k: {"contribution": float(v), "share": float(abs(v) / total)} for k, v in contrib.items()}


def evidence_prompt(ev: dict) -> str:
    """The facts an LLM may use, as a prompt: nothing else goes in."""
    lines = [f"An image classifier labelled a photo as \"{ev['target']}\" "
             f"(probability {ev['probability']:.2f})."]
    if ev["target"] != ev["predicted"]:
        lines[0] = (f"An image classifier was asked why a photo could be \"{ev['target']}\" "
                    f"(probability {ev['probability']:.2f}); its top answer was \"{ev['predicted']}\".")
    listed = [c for c in ev["concepts"][:3] if c.get("listed", True)]
    if listed:
        lines.append("The photo resembles: " + "; ".join(
            f"{c['name']} ({c['probability']:.2f})" + (f", {c['description']}" if c.get("description") else "")
            for c in listed) + ".")
    elif ev["concepts"]:  # the encoder's reading is not sure enough to be a fact
        lines.append("No ImageNet concept fits the photo well.")
    if ev["descriptors"]:
        lines.append("Closest class description: " + ev["descriptors"][0]["text"] + ".")
    parts = ev.get("parts") or {}
    if parts.get("image", {}).get("share") is not None and parts.get("text", {}).get("share") is not None:
        lines.append(f"The decision came {parts['image']['share']:.0%} from the image features and "
                     f"{parts['text']['share']:.0%} from the words.")
    if ev.get("heatmap_focus"):
        lines.append(f"The evidence lies mostly in the {ev['heatmap_focus']} of the image.")
    lines.append("In one or two plain sentences, explain the decision using only these facts.")
    return "\n".join(lines)


SYSTEM = "You explain image classifier decisions briefly and only from the facts given. Invent nothing."


def write_sentence(ev: dict, llm="local") -> dict | None:
    """One or two sentences from ``ev`` by an LLM backend (``wordsight.text.llm.get_llm``);
    None when the backend answers nothing."""
    from ..text.llm import get_llm

    backend = get_llm(llm) if isinstance(llm, str) else llm
    text = backend.generate([evidence_prompt(ev)], max_new_tokens=80, temperature=0.2, seed=0, system=SYSTEM)[0]
    text = " ".join((text or "").split())
    if not text:
        return None
    return {"text": text, "llm": backend.describe()}


def focus(view_map: np.ndarray) -> str:
    """Where the positive mass of a map lies: 'centre', 'upper left', ... (a fact for the prompt)."""
    m = np.clip(view_map, 0, None)
    if m.sum() <= 0:
        return ""
    h, w = m.shape
    ys, xs = np.mgrid[0:h, 0:w]
    cy, cx = (m * ys).sum() / m.sum() / h, (m * xs).sum() / m.sum() / w
    row = "upper" if cy < 0.38 else "lower" if cy > 0.62 else ""
    col = "left" if cx < 0.38 else "right" if cx > 0.62 else ""
    return " ".join(p for p in (row, col) if p) or "centre"
