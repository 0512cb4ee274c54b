"""Strict checks of a config before anything is built: every key known, every value of its declared type.

An unknown key names itself, where it was set and the closest valid keys; a
value of the wrong type names the type the constructor declares. Values are
never coerced: ``max_epochs: "3"`` in a file is a string and is refused.
A flag's text is read as YAML unless the type wants the text itself.
"""

from __future__ import annotations

import collections.abc as abc
import enum
import inspect
import os
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePath
from typing import Any

from ember.cli.names import did_you_mean, import_class
from ember.cli.slots import Slot
from ember.cli.sources import ConfigError, Document, FlagValue, Key, dotted

_UNION_TYPES: tuple[Any, ...] = (typing.Union, types.UnionType)


def parameters(cls: type, skip: Iterable[str] = ()) -> tuple[dict[str, Any], bool]:
    """A constructor's parameters -> type hints (``Any`` where unknown), and whether it takes ``**kwargs``."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return {}, True
    try:
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except Exception:  # a hint naming something not importable at run time
        hints = {}
    found: dict[str, Any] = {}
    open_ended = False
    for p in signature.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            open_ended = True
        elif p.kind is not p.VAR_POSITIONAL and p.name not in skip:
            found[p.name] = hints.get(p.name, Any)
    return found, open_ended


def required(cls: type, skip: Iterable[str] = ()) -> list[str]:
    """The constructor's parameters without a default."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [
        p.name for p in signature.parameters.values() if p.default is p.empty and p.kind in kinds and p.name not in skip
    ]


def accepts(hint: Any, value: Any) -> bool:
    """Whether ``value`` (as read from YAML) is of type ``hint``; hints it cannot judge accept anything."""
    if hint is Any or hint is inspect.Parameter.empty or isinstance(hint, typing.TypeVar):
        return True
    if hint is None or hint is type(None):
        return value is None
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in _UNION_TYPES:
        return any(accepts(argument, value) for argument in arguments)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in arguments)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint in (Path, PurePath, os.PathLike) or origin is os.PathLike:
        return isinstance(value, str)
    if origin in (list, tuple, set, frozenset, abc.Sequence, abc.Iterable, abc.Collection, abc.MutableSequence):
        if not isinstance(value, list):
            return False
        if origin is tuple and arguments and arguments[-1] is not Ellipsis:
            return len(value) == len(arguments) and all(accepts(a, v) for a, v in zip(arguments, value))
        return not arguments or all(accepts(arguments[0], item) for item in value)
    if origin in (dict, abc.Mapping, abc.MutableMapping):
        return isinstance(value, dict) and (
            not arguments or all(accepts(arguments[0], k) and accepts(arguments[1], v) for k, v in value.items())
        )
    if hint in (list, tuple, set, frozenset):
        return isinstance(value, list)
    if hint is dict:
        return isinstance(value, dict)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return value in hint.__members__ or any(value == member.value for member in hint)
    return True  # classes, callables, torch types: jsonargparse judges them


def describe(hint: Any) -> str:
    """A type hint as a reader writes it: ``int | None``, ``list[str]``, ``Literal['min', 'max']``."""
    if hint is type(None) or hint is None:
        return "None"
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in _UNION_TYPES:
        return " | ".join(describe(argument) for argument in arguments)
    if origin is typing.Literal:
        return " | ".join(repr(argument) for argument in arguments)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join('...' if a is Ellipsis else describe(a) for a in arguments)}]"
    return getattr(hint, "__qualname__", None) or str(hint).replace("typing.", "")


class Checker:
    """Walks a normalized document, knowing the slots and every other valid key with its type hint."""

    def __init__(self, slots: Sequence[Slot], keys: dict[str, Any], open_prefixes: Iterable[str] = ()) -> None:
        self.slots = {slot.key: slot for slot in slots}
        #: Every valid dotted key outside the slots -> its hint (``Any`` where unknown).
        self.keys = keys
        #: Dotted keys whose contents are free-form (a dict-typed option).
        self.open = tuple(open_prefixes)

    def check(self, document: Document) -> None:
        self._walk(document, document.data, ())

    def _walk(self, document: Document, node: Any, key: Key) -> None:
        if key in self.slots:
            self._slot(document, self.slots[key], node, key)
            return
        name = dotted(key)
        if key and name in self.keys:
            self._value(document, key, self.keys[name], node)
            return
        if key and name.startswith(self.open):
            return
        prefix = f"{name}." if key else ""
        children = {k[len(prefix) :].split(".")[0] for k in self._all_keys() if k.startswith(prefix)}
        if not isinstance(node, dict) or not children:
            raise ConfigError(f"{name} ({document.origin(key)}) is not an option")
        for child, value in node.items():
            if child not in children:
                raise ConfigError(self._unknown(document, key + (child,), children, ""))
            self._walk(document, value, key + (child,))

    def _all_keys(self) -> list[str]:
        return [*self.keys, *(".".join(map(str, k)) for k in self.slots)]

    def _unknown(self, document: Document, key: Key, valid: Iterable[str], owner: str) -> str:
        name = str(key[-1])
        options = ", ".join(sorted(valid))
        return (
            f"unknown key {name!r} at {dotted(key)} ({document.origin(key)}){did_you_mean(name, valid)}\n"
            f"  {owner or dotted(key[:-1]) or 'the config'} accepts: {options}"
        )

    def _value(self, document: Document, key: Key, hint: Any, value: Any) -> None:
        if isinstance(value, FlagValue):
            parsed = value.parsed()
            if accepts(hint, parsed):
                document.set(key, parsed, document.origin(key) or "?")
                return
            if accepts(hint, str(value)):
                document.set(key, str(value), document.origin(key) or "?")
                return
            value = parsed
        if not accepts(hint, value):
            raise ConfigError(
                f"{dotted(key)} ({document.origin(key)}) expects {describe(hint)}, got {value!r} ({type(value).__name__})"
            )

    def _slot(self, document: Document, slot: Slot, node: Any, key: Key) -> None:
        if isinstance(node, list) and (slot.many or slot.constants):
            for index, entry in enumerate(node):
                self._entry(document, slot, entry, key + (index,))
        else:
            self._entry(document, slot, node, key)

    def _entry(self, document: Document, slot: Slot, node: Any, key: Key) -> None:
        where = document.origin(key)
        if node is None or (slot.constants and isinstance(node, bool)):
            return
        if slot.fixed is not None:
            self._arguments(document, slot.fixed, node, key, slot.skip)
            return
        if not isinstance(node, dict) or "class_path" not in node:
            raise ConfigError(f"{dotted(key)} ({where}) needs a class_path (or a class or plugin name)")
        for name in node:
            if name not in ("class_path", "init_args", "dict_kwargs"):
                raise ConfigError(self._unknown(document, key + (name,), ("class_path", "init_args"), dotted(key)))
        cls = import_class(node["class_path"], str(document.origin(key + ("class_path",)) or where))
        base = import_class(slot.base, "ember")
        if not issubclass(cls, base):
            raise ConfigError(
                f"{dotted(key)} ({where}): {cls.__module__}.{cls.__qualname__} is not a subclass of "
                f"{base.__module__}.{base.__qualname__}"
            )
        arguments = node.get("init_args")
        if arguments is not None and not isinstance(arguments, dict):
            raise ConfigError(f"{dotted(key)}.init_args ({where}) is a mapping of argument names to values")
        self._arguments(document, cls, arguments or {}, key + ("init_args",), slot.skip)
        missing = [name for name in required(cls, slot.skip) if name not in (arguments or {})]
        if slot.plugins and missing:
            raise ConfigError(
                f"{dotted(key)} ({where}): {cls.__qualname__}() requires {', '.join(missing)}; "
                f"set it with --{dotted(key[:-1] if isinstance(key[-1], int) else key)}.{missing[0]} VALUE "
                "or under init_args in the config"
            )

    def _arguments(self, document: Document, cls: type, arguments: Any, key: Key, skip: Iterable[str]) -> None:
        if not isinstance(arguments, dict):
            raise ConfigError(f"{dotted(key)} ({document.origin(key)}) is a mapping of argument names to values")
        hints, open_ended = parameters(cls, skip)
        for name, value in arguments.items():
            if name not in hints:
                if open_ended:
                    continue
                raise ConfigError(self._unknown(document, key + (name,), hints, f"{cls.__qualname__}()"))
            self._value(document, key + (name,), hints[name], value)
