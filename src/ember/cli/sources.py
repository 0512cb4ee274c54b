"""A run's configuration as one document, with where each value came from.

Config files and ``--key value`` flags are merged in command-line order
(later wins) into nested dicts and lists; beside the data, every value keeps
its origin (``run.yaml:7`` or ``--trainer.max_epochs``) so that an error or
``--print_config`` can say where it was set. Flag values stay text
(:class:`FlagValue`) until a type hint decides how to read them, so
``--model.name 3`` can still be the string ``"3"``. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Key = tuple[str | int, ...]


class ConfigError(Exception):
    """A configuration the command refuses before anything starts (exit code 2)."""


class FlagValue(str):
    """A value typed on the command line, read as YAML or kept as text once its type hint is known."""

    def parsed(self) -> Any:
        try:
            return yaml.safe_load(self)
        except yaml.YAMLError:
            return str(self)


def dotted(key: Key) -> str:
    """``("trainer", "callbacks", 0, "init_args")`` -> ``trainer.callbacks[0].init_args``."""
    text = ""
    for part in key:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class Document:
    """Nested config data and the origin of every value in it, keyed by path."""

    def __init__(self, data: dict[str, Any] | None = None, origins: dict[Key, str] | None = None) -> None:
        self.data: dict[str, Any] = data if data is not None else {}
        self.origins: dict[Key, str] = origins if origins is not None else {}

    def origin(self, key: Key) -> str | None:
        """Where the value at ``key`` (or the nearest enclosing one that has an origin) was set."""
        for end in range(len(key), 0, -1):
            if key[:end] in self.origins:
                return self.origins[key[:end]]
        return None

    def get(self, key: Key, default: Any = None) -> Any:
        node: Any = self.data
        for part in key:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return default
        return node

    def forget(self, key: Key) -> None:
        """Drop the origins recorded at and under ``key``."""
        for known in [k for k in self.origins if k[: len(key)] == key]:
            del self.origins[known]

    def move(self, old: Key, new: Key) -> None:
        """Re-key the origins under ``old`` to ``new`` (a value moved in the data)."""
        for known in [k for k in self.origins if k[: len(old)] == old]:
            self.origins[new + known[len(old) :]] = self.origins.pop(known)

    def set(self, key: Key, value: Any, origin: str, origins: dict[Key, str] | None = None) -> None:
        """Replace the value at ``key``, creating dicts on the way; ``origins`` are relative to ``key``."""
        node: Any = self.data
        for part in key[:-1]:
            if isinstance(node, dict):
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = {}
                node = node[part]
            else:
                node = node[part]
        node[key[-1]] = value
        self.forget(key)
        self.origins[key] = origin
        for relative, where in (origins or {}).items():
            self.origins[key + relative] = where

    def merge(self, other: Document, key: Key = ()) -> None:
        """Merge ``other`` in: dicts key by key, anything else (lists included) replaced.

        A ``class_path`` that changes drops the old ``init_args``, as jsonargparse does.
        """
        mine, theirs = self.get(key), other.get(key)
        if key and not (isinstance(mine, dict) and isinstance(theirs, dict)):
            self.set(key, theirs, other.origins.get(key, "?"), _relative(other.origins, key))
            return
        if key and "class_path" in theirs and mine.get("class_path") not in (None, theirs["class_path"]):
            mine.pop("init_args", None)
            self.forget(key + ("init_args",))
        if key in other.origins:
            self.origins.setdefault(key, other.origins[key])
        for name in theirs:
            if key == () and name not in self.data:
                self.data[name] = None
            self.merge(other, key + (name,))

    def leaves(self, node: Any = None, key: Key = ()) -> Iterator[tuple[Key, Any]]:
        node = self.data if not key and node is None else node
        if isinstance(node, dict):
            for name, value in node.items():
                yield from self.leaves(value, key + (name,))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from self.leaves(value, key + (index,))
        else:
            yield key, node

    def plain(self) -> dict[str, Any]:
        """The data with every :class:`FlagValue` read as YAML: what jsonargparse receives."""
        return _plain(self.data)  # type: ignore[no-any-return]


def _plain(node: Any) -> Any:
    if isinstance(node, FlagValue):
        return node.parsed()
    if isinstance(node, dict):
        return {key: _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(value) for value in node]
    return node


def _relative(origins: dict[Key, str], key: Key) -> dict[Key, str]:
    return {k[len(key) :]: v for k, v in origins.items() if k[: len(key)] == key and len(k) > len(key)}


# ------------------------------------------------------------------------- YAML files
def load_file(path: str) -> Document:
    """A YAML config file as a :class:`Document` whose origins are ``file:line``; a bad file is a ConfigError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror or error}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    document = Document()
    if root is None:
        return document
    data = _from_node(root, (), path, document.origins)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:{root.start_mark.line + 1}: a config file holds a mapping (trainer:, model:, ...)")
    document.data = data
    return document


def _from_node(node: yaml.Node, key: Key, path: str, origins: dict[Key, str]) -> Any:
    origins[key] = f"{path}:{node.start_mark.line + 1}"
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            name = yaml.SafeLoader("").construct_object(key_node)
            if name in mapping:
                raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: key {name!r} appears twice")
            origins[key + (name,)] = f"{path}:{key_node.start_mark.line + 1}"
            mapping[name] = _from_node(value_node, key + (name,), path, origins)
            origins[key + (name,)] = f"{path}:{key_node.start_mark.line + 1}"
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_from_node(item, key + (i,), path, origins) for i, item in enumerate(node.value)]
    return yaml.SafeLoader("").construct_object(node)
