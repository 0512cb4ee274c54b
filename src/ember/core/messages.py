"""Informational messages go through Python ``logging`` under the ``ember`` logger, as Lightning's go through its own.

Users control them the usual way: ``logging.getLogger("ember").setLevel(logging.WARNING)``
silences them, and a handler on the root logger (``logging.basicConfig``) receives them.
Until the root logger has a handler, ember's fallback handler prints them to stdout, so
a plain script shows them as it always has. Warnings go through :mod:`warnings`.

Importing this module does not import torch.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import logging

NAME = "ember"


def logger(name: str = NAME) -> logging.Logger:
    """The ``ember`` logger (or a child of it), set up once: INFO level unless the user chose one, fallback handler.

    ``logging`` is imported here, at the first message, not with this module: the plugin modules that
    import this one are also imported by ``ember plugins list``, which logs nothing.
    """
    import logging

    root = logging.getLogger(NAME)
    if not any(getattr(handler, "ember_fallback", False) for handler in root.handlers):
        root.addHandler(_fallback_handler())
        if root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
    return logging.getLogger(name)


def _fallback_handler() -> logging.Handler:
    """A handler printing records to the current ``sys.stdout`` while the root logger has no handler of its own."""
    import logging

    class Fallback(logging.Handler):
        ember_fallback = True

        def emit(self, record: logging.LogRecord) -> None:
            if logging.getLogger().handlers:
                return  # propagation hands the record to the user's handlers
            try:
                sys.stdout.write(self.format(record) + "\n")
            except Exception:  # noqa: BLE001 - logging must never break training
                self.handleError(record)

    return Fallback()


def info(message: str, *args: Any, name: str = NAME, rank_zero_only: bool = True) -> None:
    """Log ``message`` at INFO under the ``ember`` logger (or its child ``name``), from global rank 0 unless told not."""
    from ember.core.rank import rank_zero_only as on_rank_zero

    if rank_zero_only and on_rank_zero.rank != 0:  # type: ignore[attr-defined]
        return
    logger(name).info(message, *args)
