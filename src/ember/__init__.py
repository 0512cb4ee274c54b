"""ember: a PyTorch training framework whose callbacks are pluggy plugins.

``import ember`` is cheap and does not import torch: ``ember.Callback`` and
``ember.hookimpl`` are available at once, and the Trainer, Module and the
rest load torch on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ember.callback import Callback
from ember.markers import hookimpl, hookspec, order
from ember.version import __version__

__all__ = [
    "Callback",
    "DataModule",
    "Module",
    "Trainer",
    "__version__",
    "hookimpl",
    "hookspec",
    "order",
    "rank_zero_only",
    "seed_everything",
]

_LAZY = {
    "DataModule": "ember.core.datamodule",
    "Module": "ember.core.module",
    "Trainer": "ember.core.trainer",
    "rank_zero_only": "ember.core.rank",
    "seed_everything": "ember.core.seed",
}


def __getattr__(name: str) -> Any:
    """Import torch-backed names on first use, so ``import ember`` stays fast."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ember' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
