"""``PossibleUserWarning`` (ember's :class:`~ember.errors.EmberWarning`) and how to silence it."""

from __future__ import annotations

import warnings

from ember.errors import EmberWarning

__all__ = ["PossibleUserWarning", "disable_possible_user_warnings"]

#: What Lightning warns with about a possible mistake; ember's warnings of that kind are EmberWarnings.
PossibleUserWarning = EmberWarning


def disable_possible_user_warnings(module: str = "") -> None:
    """Ignore ember's EmberWarnings, from every module or from the modules whose name starts with ``module``."""
    warnings.filterwarnings("ignore", category=EmberWarning, module=module)
