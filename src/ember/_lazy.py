"""Names a package imports on first access (PEP 562), so that importing the package stays free of torch.

A package lists where each of its names lives; :func:`attributes` makes the
package's ``__getattr__`` and ``__dir__`` from that table. Imports nothing of
ember, so every package can use it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from importlib import import_module
from typing import Any


def attributes(
    package: str,
    names: Mapping[str, str],
    *,
    submodules: Collection[str] = (),
    listed: Iterable[str] = (),
    hint: str = "",
    own_names: bool = True,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the module named ``package``.

    :param names: public name -> ``"module"`` (the attribute of that name there) or ``"module:attribute"``;
        a value, once imported, is kept in the package, so the next access is an ordinary lookup.
    :param submodules: names that are the modules ``package.NAME``, imported on first access.
    :param listed: names ``dir()`` shows before they are loaded (usually ``__all__``).
    :param hint: added to the ``AttributeError`` for any other name, e.g. ``"; it has A, B"``.
    :param own_names: whether ``dir()`` shows the package's own globals as well.
    """
    shown = frozenset(listed)

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return import_module(f"{package}.{name}")
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}{hint}")
        module, _, attribute = target.partition(":")
        value = getattr(import_module(module), attribute or name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(shown.union(vars(sys.modules[package])) if own_names else shown)

    return __getattr__, __dir__
