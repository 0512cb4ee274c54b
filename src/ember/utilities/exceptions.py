"""``MisconfigurationException``: Lightning's name for ember's :class:`~ember.errors.MisconfigurationError`.

One class under both names, so ``except MisconfigurationException`` catches
what ember raises and a ported callback's own raise reads as before.
"""

from __future__ import annotations

from ember.errors import MisconfigurationError

MisconfigurationException = MisconfigurationError

__all__ = ["MisconfigurationException"]
