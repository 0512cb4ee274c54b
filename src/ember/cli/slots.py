"""Where a config chooses classes (model, data, optimizer, scheduler, callbacks, logger) and how it may say so.

Every form a slot accepts is rewritten to LightningCLI's ``{class_path, init_args}``:
``pkg.module.Class``, ``pkg.module:Class``, a plugin name, ``{name: {args}}`` and
``class_path: name``. Command-line flags are applied here in order:
``--model X``, ``--model.lr 0.1`` (short for ``--model.init_args.lr``),
``--trainer.callbacks+=lr_monitor``, ``--trainer.callbacks.early_stopping.patience 5``
(adding early_stopping when it is not there yet), and ``--trainer.callbacks.patience 5``
for the last callback given, as jsonargparse reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ember.cli.names import class_path
from ember.cli.sources import ConfigError, Document, FlagValue, Key, dotted, load_file


@dataclass
class Slot:
    """One place in the config that names a class."""

    key: Key
    #: Dotted import path of the base class the choice must derive from.
    base: str
    #: The class when a script fixed it (``CLI(MyModel)``): the node holds its init args directly.
    fixed: type | None = None
    many: bool = False
    #: Plugin names (entry points) and ``{name: {args}}`` are accepted here.
    plugins: bool = False
    #: ``True``/``False``/``None`` are accepted as they are (``logger: false``).
    constants: bool = False
    #: Constructor parameters the command fills itself (an optimizer's ``params``).
    skip: frozenset[str] = field(default_factory=frozenset)


# ------------------------------------------------------------------ normal form
def normalize(document: Document, slots: Sequence[Slot]) -> Document:
    """Rewrite every slot's value in ``document`` to ``{class_path, init_args}`` form, in place."""
    for slot in slots:
        value = document.get(slot.key)
        if slot.key[:-1] and not isinstance(document.get(slot.key[:-1]), dict):
            continue
        if value is None and slot.key[-1] not in (document.get(slot.key[:-1]) or {}):
            continue
        if slot.many and isinstance(value, list):
            for index in range(len(value)):
                _normalize_entry(document, slot, slot.key + (index,))
        elif slot.constants and isinstance(value, list):
            for index in range(len(value)):
                _normalize_entry(document, slot, slot.key + (index,))
        elif slot.many and value is not None:
            document.set(slot.key, [value], document.origin(slot.key) or "?", _under(document, slot.key, (0,)))
            _normalize_entry(document, slot, slot.key + (0,))
        else:
            _normalize_entry(document, slot, slot.key)
    return document


def _under(document: Document, key: Key, prefix: Key) -> dict[Key, str]:
    return {prefix + k[len(key) :]: v for k, v in document.origins.items() if k[: len(key)] == key}


def _normalize_entry(document: Document, slot: Slot, key: Key) -> None:
    value = document.get(key)
    where = document.origin(key) or "?"
    if isinstance(value, FlagValue):
        value = value.parsed()
    if slot.fixed is not None:
        if value is not None and not isinstance(value, dict):
            raise ConfigError(
                f"{dotted(key)} ({where}) takes the arguments of {slot.fixed.__qualname__}, not {value!r}"
            )
        return
    if value is None or isinstance(value, bool):
        if not slot.constants and value is not None:
            raise ConfigError(f"{dotted(key)} ({where}) names a class; {value!r} is not one")
        document.set(key, value, where)
        return
    if isinstance(value, str):
        document.set(key, {"class_path": class_path(value, _slot_name(slot), where)}, where, {("class_path",): where})
        return
    if not isinstance(value, dict):
        raise ConfigError(f"{dotted(key)} ({where}) names a class: give pkg.module.Class, a plugin name or class_path")
    if "class_path" in value:
        value["class_path"] = class_path(
            value["class_path"], _slot_name(slot), document.origin(key + ("class_path",)) or where
        )
        return
    names = [name for name in value if name != "init_args"]
    if slot.plugins and len(names) == 1 and (value[names[0]] is None or isinstance(value[names[0]], dict)):
        name = names[0]
        arguments = value[name] or {}
        inner = _under(document, key + (name,), ("init_args",))
        document.set(
            key, {"class_path": class_path(name, _slot_name(slot), document.origin(key + (name,)) or where)}, where
        )
        document.set(
            key + ("init_args",), arguments, inner.pop(("init_args",), where), {k[1:]: v for k, v in inner.items()}
        )
        document.origins[key + ("class_path",)] = where


def _slot_name(slot: Slot) -> str:
    return str(slot.key[-1])


# ----------------------------------------------------------------- command line
@dataclass
class Request:
    """What the command line asked for besides the config: help, --print_config, the config files."""

    document: Document
    help: bool = False
    print_config: bool = False
    files: list[str] = field(default_factory=list)


def read_argv(argv: Sequence[str], slots: Sequence[Slot]) -> Request:
    """Config files and flags merged in order into one normalized :class:`Document`."""
    request = Request(Document())
    tokens = list(argv)
    while tokens:
        token = tokens.pop(0)
        if token in ("-h", "--help"):
            request.help = True
            continue
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"unexpected argument {token!r}; options look like --trainer.max_epochs 3")
        name, equals, text = token[2:].partition("=")
        if name == "print_config":
            request.print_config = True
            continue
        if not equals:
            if not tokens or (tokens[0].startswith("--") and len(tokens[0]) > 2):
                raise ConfigError(f"--{name} needs a value")
            text = tokens.pop(0)
        if name == "config":
            request.files.append(text)
            request.document.merge(normalize(load_file(text), slots))
        else:
            apply_flag(request.document, name, FlagValue(text), slots)
    return request


def apply_flag(document: Document, name: str, text: FlagValue, slots: Sequence[Slot]) -> None:
    """Set one ``--name value`` flag in the document, following the slot rules in the module docstring."""
    append = name.endswith("+")
    parts: Key = tuple(name.rstrip("+").split("."))
    origin = f"--{name}"
    if any(not part for part in parts):
        raise ConfigError(f"{origin} is not an option name")
    slot = next((s for s in slots if parts[: len(s.key)] == s.key), None)
    if slot is None:
        if append:
            raise ConfigError(f"{origin}: += appends to a list of classes (--trainer.callbacks+=NAME)")
        document.set(parts, text, origin)
        return
    rest = parts[len(slot.key) :]
    value = text.parsed()
    if not rest:
        if append:
            if not (slot.many or slot.constants):
                raise ConfigError(f"{origin}: {dotted(slot.key)} holds one class; drop the +")
            entries = document.get(slot.key)
            if not isinstance(entries, list):
                kept = [] if entries in (None, False) else [entries]
                document.set(slot.key, kept, origin, _under(document, slot.key, (0,)) if kept else None)
                entries = kept
            entries.append(value)
            document.origins[slot.key + (len(entries) - 1,)] = origin
            _normalize_entry(document, slot, slot.key + (len(entries) - 1,))
            return
        document.set(slot.key, value, origin)
        normalize(document, [slot])
        return
    current = document.get(slot.key)
    entry_key = slot.key
    if slot.fixed is not None:
        document.set(slot.key + rest, text, origin)
        return
    if isinstance(current, list) or (slot.many and current is None):
        entries = current or []
        named = rest[0] not in ("init_args", "class_path") and len(rest) > 1
        if named:
            path = class_path(str(rest[0]), _slot_name(slot), origin)
            index = next(
                (i for i, e in enumerate(entries) if isinstance(e, dict) and e.get("class_path") == path), None
            )
            if index is None:
                index = len(entries)
                if current is None:
                    document.set(slot.key, entries, origin)
                entries.append({"class_path": path})
                document.origins[slot.key + (index,)] = document.origins[slot.key + (index, "class_path")] = origin
            rest = rest[1:]
        elif not entries:
            raise ConfigError(f"{origin}: no {slot.key[-1]} was given before it to set an argument of")
        else:
            index = len(entries) - 1
        entry_key = slot.key + (index,)
    elif not isinstance(current, dict):
        raise ConfigError(f"{origin}: give {dotted(slot.key)} a class before setting its arguments")
    if rest[0] == "class_path":
        document.set(entry_key + ("class_path",), class_path(str(value), _slot_name(slot), origin), origin)
        return
    if rest[0] == "init_args":
        rest = rest[1:]
    if not rest:
        document.set(entry_key + ("init_args",), value, origin)
        return
    document.set(entry_key + ("init_args",) + rest, text, origin)
