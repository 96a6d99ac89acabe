"""Training workflows over the estimator.

``search`` (cross-validated candidates, :class:`~wordsight.estimator.candidates.Candidate`),
``autofit`` (``search_fit``: search, an ensemble of the best, refit) and ``finetune`` (an encoder
trained with a linear head, resumable checkpoints).
"""
