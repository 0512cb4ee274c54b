"""The host: the Trainer, which is the plugin manager, and what it drives.

``LightningModule`` and ``LightningDataModule`` are here too, under Lightning's
``lightning.pytorch.core`` path, loaded on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LIGHTNING_NAMES = {
    "LightningDataModule": ("ember.core.datamodule", "DataModule"),
    "LightningModule": ("ember.core.module", "Module"),
}


def __getattr__(name: str) -> Any:
    if name not in _LIGHTNING_NAMES:
        raise AttributeError(f"module 'ember.core' has no attribute {name!r}")
    module, attribute = _LIGHTNING_NAMES[name]
    return getattr(import_module(module), attribute)
