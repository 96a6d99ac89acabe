"""The encoders and head ``wordsight fit`` gives label sets (issue 24) where the options leave them open.

- No ``--head``, no ``--encoders``, the image fusion (16 or more positive images of every label):
  the mil head over the global embedding and a 2x2 tile bag (``tilebag:2:``: five encoder readings
  per image, as many as the global embedding and ``tiles:2:`` cost). Measured on Fashion-MNIST
  mosaics (docs/benchmarks.md, "Multi-label mosaics (issue 24)"): +5.9 mAP on grids and +6.3 at
  several scales at 1,000 training mosaics over the logistic head on the global embedding and
  ``tiles:2:`` (max/mean-pooled tiles), which was the default until explanations reached through
  a tile bag (``explain``'s Grad-CAM inside each tile or ``--method tiles``, the report's Grad-CAM
  of each tag: :mod:`wordsight.explain.tile_bags`).
- Under the language prior (fewer positives: the per-label prior probe, a logistic head) and with
  ``--head`` naming another head: the global embedding and ``tiles:2:``.
- ``--head mil`` without ``--encoders``: the global embedding and a 2x2 tile bag
  (``--encoders efficientnet-lite0,tilebag:2,3:efficientnet-lite0`` for 13 tiles, fourteen
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

    head = getattr(args, "head", None)
    mil_open = head is None and fusion == "image"  # the mil head may be chosen for the user
    if getattr(args, "encoders", None) is None:
        clf.set_params(encoders=MIL_ENCODERS if head == "mil" or mil_open else TILE_ENCODERS)
    if mil_open and any(is_bag(e) for e in clf.encoder_names):
        clf.set_params(head=head_taking("mil", random_state=args.seed))
