"""Policy on installed plugins beyond loading them: required plugins, missing declaring distributions,
state_key collisions, and the header naming what is active.

Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ember.callback import Callback
from ember.core.entry_points import GROUP, SPECS_GROUP, installed
from ember.core.settings import Settings
from ember.errors import PluginError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.discovery import PluginRecord, PluginReport


def missing_requirements(settings: Settings) -> list[str]:
    """One line per ``required_plugins`` entry that installed plugin distributions do not meet."""
    if not settings.required:
        return []
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    versions = {canonicalize_name(ep.distribution): ep.version for ep in installed()}
    problems = []
    for line in settings.required:
        try:
            requirement = Requirement(line)
        except InvalidRequirement as error:
            problems.append(f"{line} is not a requirement ({error}); write e.g. 'ember-foo>=1.2'")
            continue
        version = versions.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{line} is required but no installed distribution of that name has {GROUP} entry points")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{line} is required but {requirement.name} {version} is installed")
    return problems


def check_required(settings: Settings) -> None:
    """Raise :class:`~ember.errors.PluginError` naming every required plugin that is missing or too old."""
    problems = missing_requirements(settings)
    if problems:
        raise PluginError("required plugins (required_plugins / EMBER_REQUIRED_PLUGINS): " + "; ".join(problems))


def needs(hook: str, requires: tuple[str, ...]) -> str | None:
    """``needs DIST: ...`` when a distribution the plugin requires is missing or its hookspecs did not load, else None."""
    import importlib.metadata

    from packaging.requirements import InvalidRequirement, Requirement

    missing, unloaded = [], []
    for line in requires:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if requirement.name.lower() in ("ember", "torch"):
            continue
        try:
            importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement.name)
            continue
        if any(ep.distribution.lower() == requirement.name.lower() for ep in installed(SPECS_GROUP)):
            unloaded.append(requirement.name)
    if missing:
        return (
            f"needs {', '.join(missing)}: implements hook {hook!r}, which no loaded hookspec declares, and "
            f"requires {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed"
        )
    if unloaded:
        return (
            f"needs {', '.join(unloaded)}: implements hook {hook!r}, declared by {' or '.join(unloaded)}, "
            "whose hookspecs did not load (blocked, not allowed, or failed)"
        )
    return None


def mark_state_key_collisions(reports: list[PluginReport], instantiate: Callable[..., list[object]]) -> None:
    """Fail active third-party plugins whose stateful callbacks share a state_key: every Trainer would refuse them."""
    owners: dict[str, list[PluginReport]] = {}
    for report in reports:
        if report.status != "active" or report.source == "builtin" or report.kind not in ("callback", "factory"):
            continue
        try:
            made = (
                [report.value.__new__(report.value)]
                if report.kind == "callback"
                else instantiate(report.value, "factory", [])
            )
            keys = {
                c.state_key for c in made if isinstance(c, Callback) and type(c).state_dict is not Callback.state_dict
            }
        except Exception:  # noqa: S112 - a key read from constructor state: the Trainer checks it
            continue
        for key in keys:
            owners.setdefault(key, []).append(report)
    for key, sharing in owners.items():
        if len(sharing) < 2:
            continue
        for report in sharing:
            others = ", ".join(f"{o.name!r} ({o.distribution} {o.version})" for o in sharing if o is not report)
            report.status = "failed"
            report.reason = (
                f"its state_key {key!r} collides with plugin {others}: every Trainer would refuse both; "
                f"disable one (EMBER_DISABLE_PLUGINS={report.name} or [tool.ember] disable_plugins)"
            )


def plugin_header(records: list[PluginRecord]) -> str | None:
    """``plugins: DIST-VERSION, ...`` for the active third-party plugins (as pytest prints it), or None if none."""
    seen: dict[str, None] = {}
    for record in records:
        if record.source != "builtin" and record.origin:
            seen.setdefault(record.origin.replace(" ", "-"))
    return "plugins: " + ", ".join(seen) if seen else None


def collision_hint(records: list[PluginRecord], *callbacks: object) -> str:
    """For a state_key collision: which of ``callbacks`` installed plugins contributed, and how to turn them off."""
    by_id = {id(r.plugin): r for r in records if r.source != "builtin"}
    parts = [
        f"; {record.plugin!r} is plugin {record.name.split('#')[0]!r} from {record.origin}: disable it with "
        f"Trainer(disable_plugins=[{record.name.split('#')[0]!r}]), EMBER_DISABLE_PLUGINS or "
        "[tool.ember] disable_plugins"
        for callback in callbacks
        if (record := by_id.get(id(callback))) is not None
    ]
    return "".join(parts)
