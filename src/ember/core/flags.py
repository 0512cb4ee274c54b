"""Checking the Trainer's flags: each bad value is an error naming the flag, the value and what is accepted."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from ember.errors import MisconfigurationError


def _fail(flag: str, value: Any, accepted: str) -> MisconfigurationError:
    return MisconfigurationError(f"Trainer({flag}={value!r}): accepted {accepted}")


def optional_int(flag: str, value: Any, minimum: int, allow: tuple[Any, ...] = ()) -> int | None:
    """``value`` if it is None, one of ``allow``, or an int >= ``minimum``."""
    if value is None or value in allow and not isinstance(value, bool):
        return value  # type: ignore[no-any-return]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        extra = "".join(f", {a!r}" for a in allow)
        raise _fail(flag, value, f"is None{extra} or an int >= {minimum}")
    return value


def count_or_fraction(flag: str, value: Any, default: int | float = 1.0) -> int | float:
    """A ``limit_*_batches``-style value: an int >= 0 (batches) or a float in [0, 1] (a fraction)."""
    if value is None:
        return default
    if isinstance(value, bool):
        raise _fail(flag, value, "is an int >= 0 (batches) or a float between 0.0 and 1.0 (a fraction)")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, float) and 0.0 <= value <= 1.0:
        return value
    raise _fail(flag, value, "is an int >= 0 (batches) or a float between 0.0 and 1.0 (a fraction)")


def val_check_interval(value: Any) -> int | float:
    """An int >= 1 (every N training batches) or a float in (0, 1] (a fraction of an epoch)."""
    if value is None:
        return 1.0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, float) and 0.0 < value <= 1.0:
        return value
    raise _fail("val_check_interval", value, "is an int >= 1 (batches) or a float in (0.0, 1.0] (fraction of an epoch)")


def choice(flag: str, value: Any, accepted: tuple[Any, ...]) -> Any:
    if value not in accepted:
        raise _fail(flag, value, "are " + ", ".join(map(repr, accepted)))
    return value


def positive_float(flag: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or math.isnan(value):
        raise _fail(flag, value, "is None or a number >= 0")
    return float(value)


def fast_dev_run(value: Any) -> int:
    """Batches per loop for a quick check: True means 1, False or 0 means off."""
    if value is True:
        return 1
    if value is False:
        return 0
    if isinstance(value, int) and value >= 0:
        return value
    raise _fail("fast_dev_run", value, "is a bool or an int >= 0")


def duration(value: Any) -> timedelta | None:
    """``max_time``: a timedelta, a dict of timedelta arguments, or "DD:HH:MM:SS"."""
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, dict):
        try:
            return timedelta(**value)
        except TypeError as error:
            raise _fail("max_time", value, f"dict keys are timedelta's ({error})") from None
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) == 4 and all(p.isdigit() for p in parts):
            days, hours, minutes, seconds = map(int, parts)
            return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    raise _fail("max_time", value, 'is a timedelta, a dict such as {"hours": 1}, or "DD:HH:MM:SS"')
