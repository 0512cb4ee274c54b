"""Rank-zero helpers with Lightning's names and signatures: run, log or warn on global rank 0 only.

``rank_zero_only`` is ember's own (:mod:`ember.core.rank`), whose ``rank``
the distributed strategies set; the others are built on it.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from ember.core.rank import rank_zero_only

__all__ = [
    "LightningDeprecationWarning",
    "rank_prefixed_message",
    "rank_zero_debug",
    "rank_zero_deprecation",
    "rank_zero_info",
    "rank_zero_only",
    "rank_zero_warn",
]


class LightningDeprecationWarning(DeprecationWarning):
    """A deprecation that code ported from Lightning may raise or filter on."""


def _logger() -> logging.Logger:
    """The ``ember`` logger; shown on stderr at INFO unless the application configured logging, as in Lightning."""
    log = logging.getLogger("ember")
    if not log.handlers and not logging.getLogger().handlers:
        log.addHandler(logging.StreamHandler())
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


@rank_zero_only
def rank_zero_info(*args: Any, stacklevel: int = 4, **kwargs: Any) -> None:
    """``logging.info`` on the ``ember`` logger, on global rank 0 only."""
    _logger().info(*args, stacklevel=stacklevel, **kwargs)


@rank_zero_only
def rank_zero_debug(*args: Any, stacklevel: int = 4, **kwargs: Any) -> None:
    """``logging.debug`` on the ``ember`` logger, on global rank 0 only."""
    _logger().debug(*args, stacklevel=stacklevel, **kwargs)


@rank_zero_only
def rank_zero_warn(message: str | Warning, stacklevel: int = 4, **kwargs: Any) -> None:
    """``warnings.warn(message, stacklevel=..., category=...)`` on global rank 0 only."""
    warnings.warn(message, stacklevel=stacklevel, **kwargs)


def rank_zero_deprecation(message: str | Warning, stacklevel: int = 5, **kwargs: Any) -> None:
    """:func:`rank_zero_warn` with :class:`LightningDeprecationWarning` unless another category is given."""
    kwargs.setdefault("category", LightningDeprecationWarning)
    rank_zero_warn(message, stacklevel=stacklevel, **kwargs)


def rank_prefixed_message(message: str, rank: int | None) -> str:
    """``"[rank: 1] message"``; the message as is when ``rank`` is None."""
    return f"[rank: {rank}] {message}" if rank is not None else message
