"""``AttributeDict``: the dict behind ``self.hparams``, whose keys are also attributes."""

from __future__ import annotations

from ember.core.hparams import AttributeDict

__all__ = ["AttributeDict"]
