"""Loggers: where logged metrics and hyperparameters go. CSVLogger is the default.

Subclass :class:`Logger` to send them somewhere new and pass an instance as
``Trainer(logger=...)``. Importing this package does not import torch or
tensorboard; ``TensorBoardLogger`` loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember.loggers.base import FileLogger, Logger
from ember.loggers.csv_logger import CSVLogger

if TYPE_CHECKING:  # pragma: no cover
    from ember.loggers.tensorboard import TensorBoardLogger

__all__ = ["CSVLogger", "FileLogger", "Logger", "TensorBoardLogger", "resolve_loggers"]


def __getattr__(name: str) -> Any:
    if name == "TensorBoardLogger":
        from ember.loggers.tensorboard import TensorBoardLogger

        return TensorBoardLogger
    raise AttributeError(f"module 'ember.loggers' has no attribute {name!r}")


def resolve_loggers(logger: Any, default_root_dir: str) -> list[Logger]:
    """The Trainer's ``logger`` flag as a list of loggers.

    None or True give a :class:`CSVLogger` in ``default_root_dir``; False
    gives none; a Logger, or a list or tuple of them, is used as given.
    """
    from ember.errors import MisconfigurationError

    if logger is None or logger is True:
        return [CSVLogger(save_dir=default_root_dir)]
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


#: The methods the Trainer calls on every logger: an object that has them all is used as one (duck typing).
LOGGER_METHODS = ("log_metrics", "log_hyperparams", "log_graph", "save", "finalize")
