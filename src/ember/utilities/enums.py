"""``LightningEnum`` and ``GradClipAlgorithmType``: string enums that compare equal to their values."""

from __future__ import annotations

from lightning_utilities.core.enums import StrEnum

__all__ = ["GradClipAlgorithmType", "LightningEnum"]


class LightningEnum(StrEnum):
    """A str enum: ``LightningEnum.X == "x"``, so members pass wherever ember takes the string."""


class GradClipAlgorithmType(LightningEnum):
    """``Trainer(gradient_clip_algorithm=...)``: clip the total norm, or each gradient value."""

    NORM = "norm"
    VALUE = "value"
