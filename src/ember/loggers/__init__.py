"""Loggers: where logged metrics and hyperparameters go. CSVLogger is the default."""

from __future__ import annotations

from typing import Any

from ember.loggers.base import Logger
from ember.loggers.csv_logger import CSVLogger

__all__ = ["CSVLogger", "Logger", "TensorBoardLogger", "resolve_loggers"]


def __getattr__(name: str) -> Any:
    if name == "TensorBoardLogger":
        from ember.loggers.tensorboard import TensorBoardLogger

        return TensorBoardLogger
    raise AttributeError(f"module 'ember.loggers' has no attribute {name!r}")


def resolve_loggers(logger: Any, default_root_dir: str) -> list[Logger]:
    """The Trainer's ``logger`` flag as a list: None/True give a CSVLogger, False none."""
    from ember.errors import MisconfigurationError

    if logger is None or logger is True:
        return [CSVLogger(save_dir=default_root_dir)]
    if logger is False:
        return []
    loggers = list(logger) if isinstance(logger, (list, tuple)) else [logger]
    for item in loggers:
        if not callable(getattr(item, "log_metrics", None)):
            raise MisconfigurationError(
                f"Trainer(logger={item!r}): accepted are True, False, a Logger or a list of Loggers"
            )
    return loggers
