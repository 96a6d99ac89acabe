"""The encoders and head ``wordsight fit`` gives label sets (issue 24) where the options leave them open.

- No ``--head``, no ``--encoders``: the logistic head over the global embedding and ``tiles:2:``
  (max/mean-pooled 2x2 tiles), as before. Measured on Fashion-MNIST mosaics (docs/benchmarks.md,
  "Multi-label mosaics (issue 24)"), the mil head over the global embedding and a 2x2 tile bag is
  better (+5.9 mAP on grids at 1,000 training mosaics) at the same five encoder readings per image;
  explanations reach through it (``explain``'s Grad-CAM inside each tile or ``--method tiles``, the
  report's Grad-CAM of each tag: :mod:`wordsight.explain.tile_bags`), but it is not the default
  (the lead's choice): one flag gives it.
- ``--head mil`` without ``--encoders``: the global embedding and a 2x2 tile bag (five readings per
  image; ``--encoders efficientnet-lite0,tilebag:2,3:efficientnet-lite0`` for 13 tiles, fourteen
  readings: +4.5 mAP more on grids, 2.8 times the cost on every photo).
- ``--encoders`` holding a tile bag without ``--head`` (and not under the prior): the mil head.
"""
from __future__ import annotations

MIL_ENCODERS = ("efficientnet-lite0", "tilebag:2:efficientnet-lite0")
TILE_ENCODERS = ("efficientnet-lite0", "tiles:2:efficientnet-lite0")


def label_set_defaults(clf, args, fusion: str) -> None:
    """Set the encoders and head of ``clf`` (a label-set fit whose fusion will be ``fusion``) that
    ``args`` left open (the module doc)."""
    from ..estimator.heads import head_taking
    from ..features.tilebag import is_bag

    if getattr(args, "encoders", None) is None:
        clf.set_params(encoders=MIL_ENCODERS if getattr(args, "head", None) == "mil" else TILE_ENCODERS)
    elif getattr(args, "head", None) is None and fusion != "prior" and any(is_bag(e) for e in clf.encoder_names):
        clf.set_params(head=head_taking("mil", random_state=args.seed))
