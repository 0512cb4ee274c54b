"""ember: a PyTorch training framework whose callbacks are pluggy plugins.

``import ember`` is cheap and does not import torch: ``ember.Callback`` and
``ember.hookimpl`` are available at once, and the Trainer, Module and the
rest load torch on first use. Lightning's names are here too, so code written
as ``import pytorch_lightning as pl`` runs as ``import ember as pl``:
``pl.LightningModule`` is :class:`Module`, ``pl.callbacks``, ``pl.loggers``,
``pl.utilities``, ``pl.strategies`` and ``pl.cli`` are the subpackages.
"""

from __future__ import annotations

from ember import _lazy
from ember.callback import Callback
from ember.markers import hookimpl, hookspec, order
from ember.version import __version__

__all__ = [
    "Callback",
    "DataModule",
    "LightningDataModule",
    "LightningModule",
    "Module",
    "Trainer",
    "__version__",
    "callbacks",
    "cli",
    "cli_lightning_logo",
    "hookimpl",
    "hookspec",
    "loggers",
    "order",
    "rank_zero_only",
    "seed_everything",
    "strategies",
    "utilities",
]

_LAZY = {
    "DataModule": "ember.core.datamodule",
    "LightningDataModule": "ember.core.datamodule:DataModule",
    "LightningModule": "ember.core.module:Module",
    "Module": "ember.core.module",
    "Trainer": "ember.core.trainer",
    "cli_lightning_logo": "ember.utilities.logo",
    "rank_zero_only": "ember.core.rank",
    "seed_everything": "ember.core.seed",
}

#: Subpackages reachable as attributes (``ember.callbacks.EarlyStopping``), imported on first use.
_SUBPACKAGES = frozenset(("callbacks", "cli", "loggers", "strategies", "utilities"))

__getattr__, __dir__ = _lazy.attributes(__name__, _LAZY, submodules=_SUBPACKAGES, listed=__all__)
