"""Loggers: where logged metrics and hyperparameters go. TensorBoardLogger is the default.

Subclass :class:`Logger` to send them somewhere new and pass an instance as
``Trainer(logger=...)``. Importing this package does not import torch,
tensorboard, mlflow or wandb; ``TensorBoardLogger``, ``MLFlowLogger`` and
``WandbLogger`` load on first use (the last two need ``ember[mlflow]`` and
``ember[wandb]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember.loggers.base import FileLogger, Logger
from ember.loggers.csv_logger import CSVLogger

if TYPE_CHECKING:  # pragma: no cover
    from ember.loggers.mlflow import MLFlowLogger
    from ember.loggers.tensorboard import TensorBoardLogger
    from ember.loggers.wandb import WandbLogger

__all__ = [
    "CSVLogger",
    "FileLogger",
    "Logger",
    "MLFlowLogger",
    "TensorBoardLogger",
    "WandbLogger",
    "default_logger",
    "resolve_loggers",
]

_LAZY = {
    "MLFlowLogger": "ember.loggers.mlflow",
    "TensorBoardLogger": "ember.loggers.tensorboard",
    "WandbLogger": "ember.loggers.wandb",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ember.loggers' has no attribute {name!r}")


def resolve_loggers(logger: Any, default_root_dir: str) -> list[Logger]:
    """The Trainer's ``logger`` flag as a list of loggers.

    None or True give a :class:`TensorBoardLogger` in ``default_root_dir``, or a
    :class:`CSVLogger` where the ``tensorboard`` package is missing, as Lightning
    does; False gives none; a Logger, or a list or tuple of them, is used as given.
    """
    from ember.errors import MisconfigurationError

    if logger is None or logger is True:
        return [default_logger(default_root_dir)]
    if logger is False:
        return []
    loggers = list(logger) if isinstance(logger, (list, tuple)) else [logger]
    for item in loggers:
        missing = (
            [] if isinstance(item, Logger) else [m for m in LOGGER_METHODS if not callable(getattr(item, m, None))]
        )
        if missing:
            raise MisconfigurationError(
                f"Trainer(logger={logger!r}): {item!r} is not an ember.loggers.Logger and lacks Logger's "
                f"{', '.join(missing)}; accepted are True, False, None, a Logger or a list of Loggers (or of "
                f"objects with Logger's methods {', '.join(LOGGER_METHODS)})"
            )
    return loggers


def default_logger(save_dir: str) -> Logger:
    """``Trainer(logger=True)``'s logger: TensorBoard's when the package is importable and can write to
    ``save_dir`` (a local folder, s3://, gs://, hdfs://), else CSV."""
    from importlib.util import find_spec

    if find_spec("tensorboard") is None:
        return CSVLogger(save_dir=save_dir)
    from ember.loggers.tensorboard import TensorBoardLogger, writes_to

    if not writes_to(save_dir):
        return CSVLogger(save_dir=save_dir)

    return TensorBoardLogger(save_dir=save_dir)


#: The methods the Trainer calls on every logger: an object that has them all is used as one (duck typing).
LOGGER_METHODS = ("log_metrics", "log_hyperparams", "log_graph", "save", "finalize")
