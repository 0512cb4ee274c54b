"""The hookspec and hookimpl markers of the ``ember`` project.

Kept apart from everything else so that plugins can import ``ember.hookimpl``
without pulling in torch or the Trainer.
"""

from __future__ import annotations

from typing import Final, TypeVar

import pluggy

PROJECT_NAME: Final = "ember"

hookspec: Final = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl: Final = pluggy.HookimplMarker(PROJECT_NAME)

#: Where :func:`order` keeps a declaration on a class, function or module.
ORDER_ATTR: Final = "__ember_order__"

Target = str | type


class Order:
    """Where a plugin runs relative to others: ``before`` and ``after`` name plugins by entry-point name or class.

    Applied to a Callback class (or assigned to a module's ``__ember_order__``)
    it holds for every hook the plugin implements; applied to one hook method
    or ``@hookimpl`` function it holds for that hook only, on top of the
    class's declaration.
    """

    __slots__ = ("after", "before")

    def __init__(
        self, before: Target | tuple[Target, ...] | list[Target], after: Target | tuple[Target, ...] | list[Target]
    ) -> None:
        self.before = _targets(before, "before")
        self.after = _targets(after, "after")

    def __call__(self, target: _T) -> _T:
        setattr(target, ORDER_ATTR, self)
        return target

    def __repr__(self) -> str:
        return f"order(before={self.before!r}, after={self.after!r})"


def order(
    *, before: Target | tuple[Target, ...] | list[Target] = (), after: Target | tuple[Target, ...] | list[Target] = ()
) -> Order:
    """Declare that a plugin (class decorator) or one of its hooks (method decorator) runs before/after others."""
    return Order(before, after)


_T = TypeVar("_T")


def _targets(value: object, keyword: str) -> tuple[Target, ...]:
    if isinstance(value, (str, type)):
        items: tuple[object, ...] = (value,)
    elif isinstance(value, (list, tuple)):
        items = tuple(value)
    else:
        items = (value,)
    for item in items:
        if not isinstance(item, (str, type)) or item == "":
            raise TypeError(
                f"ember.order({keyword}={value!r}): {item!r} is not a plugin; accepted are entry-point or "
                "plugin names (str) and classes, or a list of them"
            )
    return items  # type: ignore[return-value]
