"""The ``ember.plugins`` entry points of installed distributions, read from metadata files alone.

Nothing is imported and no metadata parser runs: each folder on ``sys.path``
is listed once, each ``*.dist-info`` / ``*.egg-info`` folder's
entry_points.txt is read, and METADATA only for distributions that declare
ember plugins (for their name, version and ``Requires-Dist``). That keeps
discovery among a thousand installed distributions to a few milliseconds,
where ``importlib.metadata`` costs several times that before it starts. The
result is cached per ``sys.path`` for the life of the process.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

GROUP = "ember.plugins"
#: Entry points naming a module or class of ``@ember.hookspec`` functions: hooks a distribution adds.
SPECS_GROUP = "ember.hookspecs"
#: Entry points naming modules that add ``ember`` subcommands (see ember.cli.extensions).
CLI_GROUP = "ember.cli"
GROUPS = (GROUP, SPECS_GROUP, CLI_GROUP)


@dataclass(frozen=True)
class EntryPoint:
    """One ``ember.plugins`` entry point of an installed distribution, read without importing it."""

    name: str
    value: str
    distribution: str
    version: str
    requires: tuple[str, ...] = ()
    #: ``"builtin"`` for ember's own entry points, ``"entrypoint"`` for a third party's.
    source: str = "entrypoint"
    #: ``ember.plugins`` or ``ember.hookspecs``.
    group: str = GROUP

    @property
    def origin(self) -> str:
        """``"DISTRIBUTION VERSION"``, for messages."""
        return f"{self.distribution} {self.version}"

    def load(self) -> Any:
        """Import the module and look up the attribute path the entry point names."""
        module_name, _, attributes = self.value.partition(":")
        loaded: Any = importlib.import_module(module_name.strip())
        for attribute in filter(None, attributes.strip().split(".")):
            loaded = getattr(loaded, attribute)
        return loaded

    def incompatibility(self) -> str | None:
        """Why the distribution's ``Requires-Dist: ember ...`` excludes this ember, or None."""
        if self.source == "builtin" or not any(_requirement_name(line) == "ember" for line in self.requires):
            return None
        from packaging.requirements import InvalidRequirement, Requirement

        from ember.version import __version__

        for line in self.requires:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if _normalize(requirement.name) != "ember":
                continue
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            if not requirement.specifier.contains(__version__, prereleases=True):
                return f"{self.origin} requires {requirement}; this is ember {__version__}"
        return None


#: The entry points found per ``sys.path``: the one cache of installed metadata in the process.
_SCANS: dict[tuple[str, ...], dict[str, tuple[EntryPoint, ...]]] = {}


def clear_cache() -> None:
    """Forget the entry points read so far (e.g. after a ``pip install`` in this process)."""
    _SCANS.clear()


def installed(group: str = GROUP) -> tuple[EntryPoint, ...]:
    """Every entry point of ``group`` on ``sys.path``, in path order; the first copy of a distribution wins.

    ember's own groups are read in one pass over the metadata; another group gets a pass of its own.
    """
    key = tuple(sys.path)
    if key not in _SCANS:
        found = tuple(_scan(key, GROUPS))
        _SCANS[key] = {name: tuple(ep for ep in found if ep.group == name) for name in GROUPS}
    if group not in _SCANS[key]:
        _SCANS[key][group] = tuple(_scan(key, (group,)))
    return _SCANS[key][group]


def _scan(path: tuple[str, ...], groups: tuple[str, ...]) -> Iterator[EntryPoint]:
    seen: set[str] = set()
    for entry in path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for folder in names:
            if not folder.endswith((".dist-info", ".egg-info")):
                continue
            project = _normalize(folder.rsplit(".", 1)[0].split("-", 1)[0])
            if project in seen:
                continue
            seen.add(project)
            location = os.path.join(entry or ".", folder)
            try:
                with open(os.path.join(location, "entry_points.txt"), encoding="utf-8") as file:
                    text = file.read()
            except OSError:
                continue
            if not any(f"[{group}]" in text for group in groups):
                continue
            headers = _headers(location)
            name = headers.get("Name", [project])[0]
            version = headers.get("Version", ["?"])[0]
            requires = tuple(headers.get("Requires-Dist", ()))
            source = "builtin" if project == "ember" else "entrypoint"
            for group in groups:
                for ep_name, value in _section(text, group):
                    yield EntryPoint(ep_name, value, name, version, requires, source, group)


def _headers(location: str) -> dict[str, list[str]]:
    """The header fields of a distribution's METADATA (or an egg's PKG-INFO), up to the first blank line."""
    fields: dict[str, list[str]] = {}
    for file_name in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(location, file_name), encoding="utf-8") as file:
                for line in file:
                    if not line.strip():
                        break
                    key, sep, value = line.partition(":")
                    if sep and not line[0].isspace():
                        fields.setdefault(key.strip(), []).append(value.strip())
        except OSError:
            continue
        break
    return fields


def _section(text: str, group: str) -> Iterator[tuple[str, str]]:
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif current == group and "=" in line:
            name, _, value = line.partition("=")
            yield name.strip(), value.split("[", 1)[0].strip()


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _requirement_name(line: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9._-]+)", line)
    return _normalize(match.group(1)) if match else ""
