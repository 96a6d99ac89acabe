"""A point of the search space (:mod:`.search`): the Classifier parameters it sets, and its name."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """One point of the search space: the Classifier parameters it sets."""

    encoders: tuple[str, ...]
    fusion: str = "image"
    head: str = "logistic"
    C: float | None = None
    hidden: int | None = None  # the MLP's hidden width
    augment: int = 0

    @property
    def name(self) -> str:
        head = self.head + (f"(C={self.C:g})" if self.C is not None else "") + (
            f"({self.hidden})" if self.hidden else "")
        return f"{'+'.join(self.encoders)} | {self.fusion} | {head}" + (f" | aug {self.augment}" if self.augment else "")

    def params(self) -> dict:
        """:meth:`~.classifier.Classifier.set_params` arguments (the head's options as ``head__...``)."""
        head = {"head__C": self.C} if self.C is not None else {}
        if self.hidden:
            head["head__hidden"] = (int(self.hidden),)
        return {"encoders": tuple(self.encoders), "fusion": self.fusion, "head": self.head, **head,
                "augment": self.augment}

    @classmethod
    def of(cls, model) -> "Candidate":
        """The candidate a fitted Classifier is."""
        params = model.head_.get_params()
        C, hidden = params.get("C"), params.get("hidden")
        return cls(tuple(model.encoder_names), model.fusion_name, model.head_name,
                   C if isinstance(C, (int, float)) else None, hidden[0] if hidden else None, model.augment)

    @classmethod
    def from_trial(cls, params: dict) -> "Candidate":
        return cls(tuple(params["encoders"].split("+")), params.get("fusion", "image"), params["head"],
                   params.get("C"), params.get("hidden"), int(params.get("augment", 0)))
