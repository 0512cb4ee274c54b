"""``ember plugins list|show|new`` and ``ember --version``: what is installed and what loads.

Nothing here imports torch, so listing stays fast; what only one action needs (json, the
scaffold's templates) is imported by that action.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from ember.cli import install
from ember.cli.common import FAILED, OK, USAGE, table
from ember.core import discovery

_BROKEN = ("failed", "incompatible")


def _reports() -> list[discovery.PluginReport]:
    reports = discovery.survey()
    return sorted(reports, key=lambda r: (r.source != "builtin", r.name))


def _exit_code(reports: list[discovery.PluginReport]) -> int:
    return FAILED if any(r.status in _BROKEN for r in reports) else OK


def _list(as_json: bool, tracebacks: bool) -> int:
    reports = _reports()
    if as_json:
        import json

        print(json.dumps([r.to_json() for r in reports], indent=2))
        return _exit_code(reports)
    rows: list[tuple[str, ...]] = [("NAME", "STATUS", "SOURCE", "DISTRIBUTION", "HOOKS", "REASON")]
    for r in reports:
        dist = f"{r.distribution} {r.version}" if r.distribution else "-"
        rows.append((r.name, r.status, r.source, dist, str(len(r.hooks)), r.reason or ""))
    print(table(rows))
    counts = {status: sum(r.status == status for r in reports) for status in discovery.STATUSES}
    print(
        "\n"
        + ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        + "; `ember plugins show NAME` tells more"
    )
    if tracebacks:
        for r in reports:
            if r.traceback:
                print(f"\n--- {r.name} ({r.distribution} {r.version}) ---\n{r.traceback.rstrip()}")
    return _exit_code(reports)


def _state_key(value: Any) -> str:
    from ember.callback import Callback

    if getattr(value, "state_key", None) is Callback.state_key:
        return value.__qualname__
    try:
        return str(value.__new__(value).state_key)
    except Exception:  # the property reads what the constructor sets
        return "set per instance from its constructor arguments"


class _Source(str):
    """An annotation kept as source text (``from __future__ import annotations``), shown without quotes."""

    def __repr__(self) -> str:
        return str(self)


def _parameters(value: Any) -> str:
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):
        return "-"
    parameters = [
        p.replace(annotation=_Source(p.annotation)) if isinstance(p.annotation, str) else p
        for p in signature.parameters.values()
    ]
    return str(signature.replace(parameters=parameters, return_annotation=signature.empty))[1:-1] or "(none)"


def _find(reports: list[discovery.PluginReport], name: str) -> list[discovery.PluginReport]:
    """The plugins ``name`` names: an entry-point name, else the class (or object) its entry point points at."""
    by_name = [r for r in reports if r.name == name]
    if by_name:
        return by_name
    attribute = [r for r in reports if (r.entry_point or "").rpartition(":")[2] == name]
    return attribute or [r for r in reports if (r.entry_point or "").rpartition(":")[2].lower() == name.lower()]


def _show(name: str) -> int:
    from ember.core.pluginmanager import closest

    reports = _reports()
    found = _find(reports, name)
    if len(found) > 1:
        listed = ", ".join(f"{r.name} ({r.entry_point})" for r in found)
        print(f"ember: {name!r} names several plugins: {listed}; pass one of their names", file=sys.stderr)
        return USAGE
    if not found:
        names = [r.name for r in reports] + [(r.entry_point or "").rpartition(":")[2] for r in reports]
        close = closest(name, names)
        hint = f" (did you mean {close!r}?)" if close else ""
        print(
            f"ember: no plugin named {name!r}{hint}; `ember plugins list` shows the installed ones "
            "(by entry-point name; a class name such as ModelCheckpoint works too)",
            file=sys.stderr,
        )
        return USAGE
    report = found[0]
    value = report.value
    fields = [
        ("name", report.name),
        ("status", report.status + (f" ({report.reason})" if report.reason else "")),
        ("distribution", f"{report.distribution} {report.version} ({report.source})"),
        ("entry point", f"{report.name} = {report.entry_point} [{discovery.GROUP}]"),
        ("kind", report.kind or "-"),
    ]
    if report.kind in ("callback", "logger"):
        fields.append(("parameters", _parameters(value)))
    if report.kind == "callback":
        fields.append(("state_key", _state_key(value)))
    fields.append(("hooks", ", ".join(report.hooks) or "-"))
    width = max(len(label) for label, _ in fields)
    print("\n".join(f"{label + ':':{width + 1}}  {text}" for label, text in fields))
    doc = inspect.getdoc(value) if value is not None else None
    if doc:
        print("\n" + doc)
    if report.traceback:
        print("\n" + report.traceback.rstrip())
    return FAILED if report.status in _BROKEN else OK


def _new(arguments: Any) -> int:
    from ember.cli import scaffold

    return scaffold.new(arguments.name, arguments.directory)


def register(commands: Any) -> None:
    """Add ``ember plugins ...`` to the top-level subcommands."""
    plugins = commands.add_parser("plugins", help="list, inspect or create plugins")
    actions = plugins.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every installed plugin with its status")
    listing.add_argument("--json", action="store_true", help="print a JSON list of objects")
    listing.add_argument("--traceback", action="store_true", help="print the traceback of each failed plugin")
    listing.set_defaults(run=lambda a: _list(a.json, a.traceback))
    show = actions.add_parser("show", help="one plugin's docstring, hooks, parameters and origin")
    show.add_argument(
        "name", help="the plugin's entry-point name or its class name (model_checkpoint, ModelCheckpoint)"
    )
    show.set_defaults(run=lambda a: _show(a.name))
    new = actions.add_parser("new", help="scaffold a plugin package: pyproject, a Callback and its test")
    new.add_argument("name", help="the plugin's name; the package is ember-NAME")
    new.add_argument("--directory", default=".", help="where to create ember-NAME/ (default: here)")
    new.set_defaults(run=_new)
    install.add(actions)


def version() -> int:
    from ember import __version__

    reports = _reports()
    third_party = {
        f"{r.distribution}-{r.version}" for r in reports if r.source == "entrypoint" and r.status == "active"
    }
    print(f"ember {__version__}")
    if third_party:
        print("plugins: " + ", ".join(sorted(third_party)))
    return _exit_code(reports)
