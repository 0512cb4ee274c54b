"""``ember plugins install|uninstall``: pip, in ember's own environment, keeping only what is a working plugin.

``install`` runs ``python -m pip install`` with the interpreter running ember,
then checks that each new distribution declares an ``ember.plugins`` entry
point and that its plugins load. If not, it uninstalls what the install added
(and reinstalls the versions it replaced), so the environment is left as it
was, and exits 1 with the reason. Nothing here imports torch.
"""

from __future__ import annotations

import sys
from typing import Any

from ember.cli.common import FAILED, OK, USAGE
from ember.core import discovery
from ember.core.entry_points import GROUP

_BROKEN = ("failed", "incompatible", "needs")


def add(actions: Any) -> None:
    """Add ``install`` and ``uninstall`` to the ``ember plugins`` subcommands."""
    install = actions.add_parser("install", help="pip-install plugins into ember's environment, checked")
    install.add_argument("requirements", nargs="*", metavar="NAME", help="what pip accepts: names, paths, wheels")
    install.add_argument("--upgrade", "-U", action="store_true", help="passed to pip")
    install.add_argument("--editable", "-e", metavar="PATH", help="passed to pip: install a project in place")
    install.set_defaults(run=lambda a: _install(a.requirements, a.upgrade, a.editable))
    uninstall = actions.add_parser("uninstall", help="pip-uninstall plugin distributions (or entry-point names)")
    uninstall.add_argument("names", nargs="+", metavar="NAME")
    uninstall.set_defaults(run=lambda a: _uninstall(a.names))


def _pip(*arguments: str) -> int:
    import subprocess

    return subprocess.run([sys.executable, "-m", "pip", *arguments], check=False).returncode


def _distributions() -> dict[str, str]:
    """Installed distributions, by normalized name, with their versions."""
    import importlib.metadata  # 25 ms: only install needs it, not `ember plugins list`

    from packaging.utils import canonicalize_name

    importlib.invalidate_caches()
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), dist.version)
    return found


def _install(requirements: list[str], upgrade: bool, editable: str | None) -> int:
    if not requirements and editable is None:
        print("ember plugins install: name at least one plugin (or --editable PATH)", file=sys.stderr)
        return USAGE
    before = _distributions()
    options = (["--upgrade"] if upgrade else []) + (["--editable", editable] if editable else [])
    if _pip("install", *options, *requirements) != 0:
        print("ember plugins install: pip failed; nothing was checked", file=sys.stderr)
        return FAILED
    after = _distributions()
    added = sorted(set(after) - set(before))
    replaced = {name: before[name] for name in after if name in before and after[name] != before[name]}
    problems = _problems(added + sorted(replaced), requirements)
    if not problems:
        print(f"ember: installed {', '.join(f'{n} {after[n]}' for n in added + sorted(replaced)) or 'nothing new'}")
        return OK
    for problem in problems:
        print(f"ember plugins install: {problem}", file=sys.stderr)
    if added:
        _pip("uninstall", "--yes", *added)
    for name, version in replaced.items():
        _pip("install", "--no-deps", f"{name}=={version}")
    print("ember plugins install: rolled back; the environment is as it was", file=sys.stderr)
    return FAILED


def _problems(new: list[str], requirements: list[str]) -> list[str]:
    """Why the install is not a working plugin: a requested distribution without entry points, or one that fails."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    discovery.clear_cache()
    reports = discovery.survey()
    plugin_dists = {canonicalize_name(r.distribution) for r in reports if r.distribution and r.source != "builtin"}
    named = set()
    for requirement in requirements:
        try:
            named.add(canonicalize_name(Requirement(requirement).name))
        except InvalidRequirement:  # a path, wheel or URL: judged by what it added
            pass
    checked = [name for name in new if name in named] or [name for name in new if name in plugin_dists] or new[:1]
    problems = []
    for name in checked:
        if name not in plugin_dists:
            problems.append(f"{name} declares no {GROUP} entry point, so it is not an ember plugin")
            continue
        for report in reports:
            if report.distribution and canonicalize_name(report.distribution) == name and report.status in _BROKEN:
                problems.append(f"plugin {report.name!r} of {name} does not load ({report.status}): {report.reason}")
    return problems


def _uninstall(names: list[str]) -> int:
    by_entry_point = {ep.name: ep.distribution for ep in discovery.installed() if ep.source != "builtin"}
    distributions = [by_entry_point.get(name, name) for name in names]
    if any(name.lower() == "ember" for name in distributions):
        print("ember plugins uninstall: refusing to uninstall ember itself", file=sys.stderr)
        return USAGE
    code = _pip("uninstall", "--yes", *distributions)
    discovery.clear_cache()
    return OK if code == 0 else FAILED
