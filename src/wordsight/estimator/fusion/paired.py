"""The fusions that read each image's own text beside the image (:mod:`wordsight.estimator.paired_text`).

- ``paired``: one head on the row ``[image blocks, weight * own-text vector]``, and a second head
  on the image blocks, fitted on every training image, for rows without text;
- ``late``: a head on the image blocks and a head on the own-text vector, combined as
  ``log_softmax(log_softmax(z_image) + weight * log_softmax(z_text))``; a row without text gets
  the image head alone.

The heads that read text are fitted on the training images that have one.
"""
from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import Interval

from ..._util.numerics import log_softmax
from ..paired_text import PairedText, has_text
from .base import Fusion, training_rows


class _OwnTextFusion(Fusion):
    """Image blocks and the own-text block; ``weight`` (>= 0) as the subclass uses it."""

    paired = True
    paired_: PairedText | None = None  # what fit learns besides the main head
    _parameter_constraints = {"weight": [Interval(Real, 0, None, closed="left")]}

    def __init__(self, weight=1.0):
        self.weight = weight

    def fit(self, model, blocks, M, view_M, y, head):
        """The two heads (:meth:`_fit_heads`) on the fused rows, whose text block may be NaN."""
        X, y = training_rows(M, view_M, y)
        split = sum(v.shape[1] for v in blocks.embeddings.values())
        text = has_text(X, split)
        if len(np.unique(y[text])) < 2:
            raise ValueError(f"fusion {self.name!r} needs paired texts (a manifest's 'text' column): "
                             f"{int(text.sum())} of {len(X)} training images have one, covering "
                             f"{len(np.unique(y[text]))} class(es); at least two classes need texts")
        main, second = self._fit_heads(lambda: clone(head), X, y, text, split, len(model.classes_))
        self.paired_ = PairedText(self.name, split, X.shape[1] - split, float(self.weight), second)
        return main

    def logits_torch(self, head, fused, prior_logits, torch_form):
        """The same log-probabilities in torch; differentiable through the columns each row's answer reads."""
        import torch

        split = self.paired_.split
        text = ~torch.isnan(fused[:, split:]).any(1, keepdim=True)
        safe = torch.where(text, fused[:, split:], torch.zeros_like(fused[:, split:]))  # never read
        return self._torch(torch_form(head), torch_form(self.paired_.head), fused[:, :split], safe, text)


class PairedFusion(_OwnTextFusion):
    """One head on ``[image blocks, weight * own text]``; an image-only head for rows without text."""

    name, paired_scaled = "paired", True

    @property
    def paired_block_weight(self) -> float:
        """Scale of the own-text block: ``weight`` (one head over the image and its text)."""
        return float(self.weight)

    @staticmethod
    def _fit_heads(make_head, X, y, text, split, n_classes):
        return make_head().fit(X[text], y[text], n_classes), make_head().fit(X[:, :split], y, n_classes)

    @staticmethod
    def head_widths(paired: PairedText) -> tuple[int, int]:
        """Columns the main head and the second head read."""
        return paired.split + paired.dim, paired.split

    def logits(self, head, fused, prior_logits):
        """Log-probabilities of fused rows; a row without text is decided by the image-only head."""
        X, split = np.asarray(fused, np.float64), self.paired_.split
        text = has_text(X, split)
        out = log_softmax(self.paired_.head.logits(X[:, :split]))
        if text.any():
            out[text] = log_softmax(head.logits(X[text]))
        return out

    @staticmethod
    def _torch(main, second, img, safe, text):
        import torch

        with_text = torch.log_softmax(main(torch.cat([img, safe], 1)), 1)
        return torch.where(text, with_text, torch.log_softmax(second(img), 1))


class LateFusion(_OwnTextFusion):
    """A head on the image blocks and one on the own text, their log-probabilities mixed by ``weight``."""

    name = "late"

    @staticmethod
    def _fit_heads(make_head, X, y, text, split, n_classes):
        return make_head().fit(X[:, :split], y, n_classes), make_head().fit(X[text, split:], y[text], n_classes)

    @staticmethod
    def head_widths(paired: PairedText) -> tuple[int, int]:
        """Columns the main head and the second head read."""
        return paired.split, paired.dim

    def logits(self, head, fused, prior_logits):
        """Log-probabilities of fused rows; a row without text is decided by the image head alone."""
        X, split = np.asarray(fused, np.float64), self.paired_.split
        text = has_text(X, split)
        out = log_softmax(head.logits(X[:, :split]))
        if text.any():
            t = log_softmax(self.paired_.head.logits(X[text, split:]))
            out[text] = log_softmax(out[text] + self.paired_.weight * t)
        return out

    def _torch(self, main, second, img, safe, text):
        import torch

        zi = torch.log_softmax(main(img), 1)
        both = torch.log_softmax(zi + self.paired_.weight * torch.log_softmax(second(safe), 1), 1)
        return torch.where(text, both, zi)
