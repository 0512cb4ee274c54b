"""Class names in a config: plugin entry-point names, import paths, and torch's optimizer short names.

``early_stopping`` (an ``ember.plugins`` entry point, ember's own or a
third party's), ``pkg.module:Class`` and ``pkg.module.Class`` all name a
class; :func:`class_path` turns each into the dotted import path that
jsonargparse and the saved config use, and :func:`import_class` imports it
with an error that says what would be accepted.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from ember.cli.sources import ConfigError
from ember.core.entry_points import installed

#: Where a bare class name (``Adam``, ``StepLR``) is looked up for these slots, as LightningCLI does.
SHORT_NAME_MODULES = {"optimizer": "torch.optim", "lr_scheduler": "torch.optim.lr_scheduler"}


def plugin_names() -> dict[str, str]:
    """Installed ``ember.plugins`` entry-point names -> their dotted class paths (first of a name wins)."""
    names: dict[str, str] = {}
    for ep in sorted(installed(), key=lambda ep: ep.source != "builtin"):
        names.setdefault(ep.name, ep.value.replace(":", ".").replace(" ", ""))
    return names


def closest(word: str, choices: Any, n: int = 3) -> list[str]:
    """The choices spelled most like ``word``, best first."""
    return difflib.get_close_matches(str(word), sorted(set(map(str, choices))), n=n, cutoff=0.6)


def did_you_mean(word: str, choices: Any) -> str:
    matches = closest(word, choices)
    return "; did you mean " + " or ".join(f"`{m}`" for m in matches) + "?" if matches else ""


def class_path(name: str, slot: str, where: str) -> str:
    """The dotted import path ``name`` stands for in ``slot``; a ConfigError naming what is installed if none."""
    text = str(name).strip()
    plugins = plugin_names()
    if text in plugins:
        return plugins[text]
    if ":" in text:
        return text.replace(":", ".")
    if "." in text:
        return text
    if slot in SHORT_NAME_MODULES:
        return f"{SHORT_NAME_MODULES[slot]}.{text}"
    by_class = sorted({path for path in plugins.values() if path.rsplit(".", 1)[-1] == text})
    if len(by_class) == 1:  # a plugin's class name, as LightningCLI accepts EarlyStopping
        return by_class[0]
    raise ConfigError(
        f"no plugin named {text!r} ({where}){did_you_mean(text, plugins)}\n"
        f"  installed plugins: {', '.join(sorted(plugins))}\n"
        "  (or give a class as pkg.module.Class)"
    )


def import_class(path: str, where: str) -> type:
    """Import the class at dotted ``path``; a ConfigError saying what failed."""
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise ConfigError(f"{path!r} ({where}) is not an import path; give pkg.module.Class or a plugin name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        # maybe pkg.module.Class.Inner: try one level up
        outer, _, inner = module_name.rpartition(".")
        try:
            found = getattr(getattr(importlib.import_module(outer), inner), attribute)
        except Exception:
            raise ConfigError(f"cannot import {path} ({where}): {error}") from None
    else:
        found = getattr(module, attribute, None)
        if found is None:
            public = [n for n in dir(module) if not n.startswith("_") and isinstance(getattr(module, n), type)]
            raise ConfigError(f"{module_name} has no class {attribute!r} ({where}){did_you_mean(attribute, public)}")
    if not isinstance(found, type):
        raise ConfigError(f"{path} ({where}) is a {type(found).__name__}, not a class")
    return found
