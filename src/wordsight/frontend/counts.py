"""Every count a user gives (top-k, LIME samples, SHAP calls, augmented views, few-shot k, draws...)
checked against one table of bounds before any work: the CLI (as its options are parsed) and the
server (form fields) refuse a value out of range with the same one-line :class:`InputError`.

Lower bounds say what the count means (zero LIME samples is no explanation, zero draws is no
curve); upper bounds keep one request's cost in seconds and memory: 100,000,000 LIME samples grew
to 23 GB before the kernel killed the run.
"""
from __future__ import annotations

import argparse

from .input_error import InputError

# name -> (smallest, largest, what it counts)
COUNTS = {
    "top_k": (1, 1000, "classes listed per image"),  # 1000: the most classes a class list may hold
    "top": (1, 100, "concepts per description"),
    "lime_samples": (1, 10_000, "LIME perturbations per image"),  # the default is 200
    "shap_evals": (1, 10_000, "SHAP model calls per image"),
    "augment": (0, 64, "augmented views per training image"),  # the Classifier's own bounds
    "tta": (0, 64, "test-time augmentation views"),
    "few_shot": (1, 1000, "labelled images per class of a few-shot point"),
    "draws": (1, 100, "random draws per few-shot point"),
    "mistakes": (0, 1000, "mistakes shown in the report"),
    "k": (1, 256, "descriptions per class"),  # the most a descriptions file may hold per class
}


def check_count(name: str, value, where: str | None = None) -> int:
    """``value`` as an integer within ``COUNTS[name]``; ``where`` (default ``name``) starts the error."""
    lo, hi, what = COUNTS[name]
    where = where or name
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value).strip())
        except ValueError:
            raise InputError(422, f"invalid_{name}", f"{where} takes a whole number ({what}), not "
                             f"{str(value)[:50]!r}") from None
    if not lo <= value <= hi:
        raise InputError(422, f"invalid_{name}", f"{where} must be between {lo:,} and {hi:,} ({what}), not {value:,}")
    return value


def count_option(name: str) -> dict:
    """``add_argument`` keywords for a count option: an integer checked by :func:`check_count` as
    it is parsed (the refusal names the option), so before any work."""
    class CheckedCount(argparse.Action):
        def __call__(self, parser, namespace, value, option_string=None):
            setattr(namespace, self.dest, check_count(name, value, option_string))

    return {"type": int, "action": CheckedCount}
