"""Which plugins load, which are blocked, and whether a faulty one is an error: pytest's controls, renamed.

* ``EMBER_DISABLE_PLUGIN_AUTOLOAD=1`` turns third-party autoloading off;
  ``EMBER_PLUGINS=a,b`` loads just those (a built-in that is only available
  too, constructed without arguments).
* ``Trainer(disable_plugins=[...])``, ``EMBER_DISABLE_PLUGINS=a,b`` and
  ``disable_plugins = [...]`` under ``[tool.ember]`` in the nearest
  pyproject.toml block plugins by entry-point name, before they are imported.
* ``Trainer(strict_plugins=True)`` or ``EMBER_STRICT_PLUGINS=1`` turn a plugin
  that cannot be loaded from a warning into an error.
* ``allow_plugins = [...]`` (or ``EMBER_ALLOW_PLUGINS=a,b``) switches third
  parties to deny-by-default: an unlisted one is never imported. Entries are
  entry-point or distribution names.
* ``required_plugins = ["ember-foo>=1.2"]`` (or ``EMBER_REQUIRED_PLUGINS``,
  ``;``-separated): a missing distribution or a wrong version is an error
  before any model code runs.
* ``end_hooks = "reverse"`` (or ``EMBER_END_HOOKS=reverse``) calls ``*_end``
  hooks and ``teardown`` in reverse registration order (teardown order).
* ``EMBER_TRACE_PLUGINS=1`` logs each plugin load and each hook call with its duration.
* A plugin reads its own table, ``[tool.ember.NAME]``, with :func:`plugin_settings`.
  Any other ``[tool.ember]`` key is warned about, with the closest known key.

Reading these costs a few stat calls: pyproject.toml is parsed only when it
mentions ``[tool.ember``. Importing this module does not import torch.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ember.errors import MisconfigurationError

AUTOLOAD_OFF = "EMBER_DISABLE_PLUGIN_AUTOLOAD"
PLUGINS = "EMBER_PLUGINS"
DISABLE = "EMBER_DISABLE_PLUGINS"
STRICT = "EMBER_STRICT_PLUGINS"
ALLOW = "EMBER_ALLOW_PLUGINS"
REQUIRED = "EMBER_REQUIRED_PLUGINS"
END_HOOKS = "EMBER_END_HOOKS"
TRACE = "EMBER_TRACE_PLUGINS"

#: The ``[tool.ember]`` keys ember reads; tables (``[tool.ember.NAME]``) belong to plugins.
KNOWN_KEYS: set[str] = {"disable_plugins", "allow_plugins", "required_plugins", "end_hooks"}

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class Settings:
    """The plugin controls in force for one Trainer or one ``ember plugins`` command."""

    #: Whether installed third-party plugins load without being named.
    autoload: bool = True
    #: Names from ``EMBER_PLUGINS``: loaded even when autoloading is off.
    requested: tuple[str, ...] = ()
    #: Blocked names, each with where it was blocked (for messages).
    blocked: Mapping[str, str] = field(default_factory=dict)
    #: A plugin that cannot be loaded is an error rather than a warning.
    strict: bool = False
    #: The pyproject.toml the ``[tool.ember]`` table came from, if any.
    pyproject: Path | None = None
    #: That ``[tool.ember]`` table.
    tool: Mapping[str, Any] = field(default_factory=dict)
    #: Third-party plugins allowed to load (entry-point or distribution names); None allows all.
    allowed: tuple[str, ...] | None = None
    #: Where the allow list came from, for messages.
    allowed_by: str = ""
    #: Requirements (``"ember-foo>=1.2"``) that installed plugin distributions must meet.
    required: tuple[str, ...] = ()
    #: Call ``*_end`` hooks and ``teardown`` in reverse registration order.
    reverse_end_hooks: bool = False
    #: Log each plugin load and hook call with its duration.
    trace: bool = False

    def allows(self, name: str, distribution: str) -> bool:
        """Whether the allow list (if any) names this entry point or its distribution."""
        if self.allowed is None:
            return True
        wanted = {_normalize(n) for n in self.allowed}
        return _normalize(name) in wanted or _normalize(distribution) in wanted or name in self.requested

    def blocked_by(self, name: str) -> str | None:
        """Where ``name`` was blocked (e.g. ``"EMBER_DISABLE_PLUGINS"``), or None if it is not."""
        return self.blocked.get(name)

    def plugin_settings(self, name: str) -> dict[str, Any]:
        """The ``[tool.ember.NAME]`` table (empty when there is none)."""
        table = self.tool.get(name)
        return dict(table) if isinstance(table, Mapping) else {}


def load_settings(
    disable_plugins: Any = None,
    strict: bool | None = None,
    environ: Mapping[str, str] | None = None,
    start: str | os.PathLike[str] | None = None,
) -> Settings:
    """Combine the Trainer's arguments, the environment and the nearest pyproject.toml.

    :param disable_plugins: the Trainer's ``disable_plugins``: a name or an iterable of names.
    :param strict: the Trainer's ``strict_plugins``; None defers to ``EMBER_STRICT_PLUGINS``.
    :param environ: the environment to read (``os.environ`` by default).
    :param start: the folder to look for pyproject.toml from (the working directory by default).
    """
    env = os.environ if environ is None else environ
    pyproject = find_pyproject(start)
    tool = read_tool_table(pyproject) if pyproject is not None else {}
    blocked: dict[str, str] = {}
    configured = tool.get("disable_plugins", [])
    if not isinstance(configured, list) or not all(isinstance(n, str) for n in configured):
        raise MisconfigurationError(
            f"[tool.ember] disable_plugins = {configured!r} in {pyproject}: expected a list of plugin names"
        )
    for name in configured:
        blocked.setdefault(name, f"[tool.ember] disable_plugins in {pyproject}")
    for name in _names(env.get(DISABLE, "")):
        blocked.setdefault(name, DISABLE)
    for name in _trainer_names(disable_plugins):
        blocked[name] = "Trainer(disable_plugins=...)"
    allowed, allowed_by = _list_setting(tool, "allow_plugins", pyproject), f"[tool.ember] allow_plugins in {pyproject}"
    if ALLOW in env:
        allowed, allowed_by = tuple(_names(env[ALLOW])), ALLOW
    required = _list_setting(tool, "required_plugins", pyproject) or ()
    required += tuple(r.strip() for r in env.get(REQUIRED, "").split(";") if r.strip())
    end_hooks = env.get(END_HOOKS, tool.get("end_hooks", "forward"))
    if end_hooks not in ("forward", "reverse"):
        raise MisconfigurationError(f"end_hooks = {end_hooks!r}: accepted are 'forward' (the default) and 'reverse'")
    _warn_unknown_keys(tool, pyproject)
    return Settings(
        autoload=not _flag(env, AUTOLOAD_OFF),
        requested=tuple(_names(env.get(PLUGINS, ""))),
        blocked=blocked,
        strict=_flag(env, STRICT) if strict is None else bool(strict),
        pyproject=pyproject,
        tool=tool,
        allowed=allowed,
        allowed_by=allowed_by,
        required=required,
        reverse_end_hooks=end_hooks == "reverse",
        trace=_flag(env, TRACE),
    )


def _list_setting(tool: Mapping[str, Any], key: str, pyproject: Path | None) -> tuple[str, ...] | None:
    value = tool.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise MisconfigurationError(f"[tool.ember] {key} = {value!r} in {pyproject}: expected a list of strings")
    return tuple(value)


def _warn_unknown_keys(tool: Mapping[str, Any], pyproject: Path | None) -> None:
    """A typo such as ``disable_plugin`` would otherwise be ignored without a word."""
    for key, value in tool.items():
        if key in KNOWN_KEYS or isinstance(value, Mapping):
            continue
        import difflib
        import warnings

        from ember.errors import EmberWarning

        close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys are {', '.join(sorted(KNOWN_KEYS))}"
        warnings.warn(f"[tool.ember] {key} in {pyproject} is not an ember setting; {hint}", EmberWarning, stacklevel=3)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def plugin_settings(name: str, start: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """A plugin's own settings: the ``[tool.ember.NAME]`` table of the nearest pyproject.toml.

    ``NAME`` is the plugin's entry-point name. Returns an empty dict when
    there is no such table, so a plugin can write
    ``plugin_settings("mine").get("every_n", 10)``.
    """
    pyproject = find_pyproject(start)
    tool = read_tool_table(pyproject) if pyproject is not None else {}
    return Settings(tool=tool).plugin_settings(name)


def find_pyproject(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest pyproject.toml in ``start`` (default: the working directory) or a folder above it."""
    folder = Path(start if start is not None else os.getcwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / "pyproject.toml"
        if path.is_file():
            return path
    return None


def read_tool_table(path: Path) -> dict[str, Any]:
    """The ``[tool.ember]`` table of a pyproject.toml; ``{}`` when it has none."""
    text = path.read_text(encoding="utf-8")
    if "tool.ember" not in text:  # spares the TOML parser in the common case
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise MisconfigurationError(
                f"{path} has a [tool.ember] table; reading it on Python 3.10 needs `pip install tomli`"
            ) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise MisconfigurationError(f"{path} is not valid TOML: {error}") from None
    table = document.get("tool", {}).get("ember", {})
    if not isinstance(table, dict):
        raise MisconfigurationError(f"{path}: [tool.ember] must be a table, got {table!r}")
    return table


def _flag(env: Mapping[str, str], variable: str) -> bool:
    value = env.get(variable, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise MisconfigurationError(
        f"{variable}={env[variable]!r}: accepted are {', '.join(_TRUE)} (on) and {', '.join(_FALSE[1:])} or empty (off)"
    )


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _trainer_names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return _names(value)
    names = list(value) if isinstance(value, Iterable) else [value]
    if not all(isinstance(name, str) for name in names):
        raise MisconfigurationError(
            f"Trainer(disable_plugins={value!r}): accepted are a plugin name or a list of names "
            "(`ember plugins list` shows them)"
        )
    return names
