"""The image's own pixels as features: the baseline every learned encoder should beat.

``pixels-32`` resizes the shorter side to 32 px, centre-crops 32 x 32 and returns the 3,072 RGB
values, scaled to [-1, 1]. It has no weights and no ImageNet head, so it takes part in image
fusion only (no text block, no language prior). ImageNet CNNs see a tiny, centred image
(a silhouette, a digit, a garment on a plain ground) only after upsampling it several times; the
raw pixels keep what that loses, and their errors differ from the CNNs'. The model search
(``fit --search``) tries it beside the packaged CNNs and its cross-validation decides whether it
earns a place, alone, concatenated or as an ensemble member (on natural photos we expect it to
drop out; no labelled natural photos were at hand to measure it).
"""
from __future__ import annotations

from ._registry import register_model
from .base import ImageEncoder
from .config import EncoderConfig

PIXELS_SIZE = 32


def _pixels_config() -> EncoderConfig:
    return EncoderConfig(
        name=f"pixels-{PIXELS_SIZE}", modality="image", dim=3 * PIXELS_SIZE * PIXELS_SIZE, licence="none (no weights)",
        weight_source="none: the image's own pixels", input_size=PIXELS_SIZE, resize_size=PIXELS_SIZE,
        interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
    )


class PixelEncoder(ImageEncoder):
    """Preprocessed images (B, 3, S, S) in, the same values flattened (B, 3 * S * S) out."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config

    def forward(self, x):
        """``{'embedding': x flattened}``: channel-major, row by row."""
        return {"embedding": x.flatten(1)}


@register_model(f"pixels-{PIXELS_SIZE}", _pixels_config)
def pixels_32():
    return PixelEncoder(_pixels_config()).eval()
