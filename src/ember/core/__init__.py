"""The host: the Trainer, which is the plugin manager, and what it drives.

``LightningModule`` and ``LightningDataModule`` are here too, under Lightning's
``lightning.pytorch.core`` path, loaded on first use.
"""

from __future__ import annotations

from ember import _lazy

_LIGHTNING_NAMES = {
    "LightningDataModule": "ember.core.datamodule:DataModule",
    "LightningModule": "ember.core.module:Module",
}

__getattr__, __dir__ = _lazy.attributes(__name__, _LIGHTNING_NAMES, listed=_LIGHTNING_NAMES)
