"""The ``ember`` command (also ``python -m ember``): what is installed, what loads, and what can be hooked.

* ``ember plugins list [--json] [--traceback]`` -- every plugin, built-ins included, with its status;
* ``ember plugins show NAME`` -- one plugin's docstring, hooks, parameters, state_key and origin;
* ``ember plugins new NAME`` -- a plugin package that installs and passes its test as generated;
* ``ember hooks`` -- every hook with its arguments and one-line summary;
* ``ember --version`` -- ember's version and the active third-party plugins, as pytest's header shows them.

Exit codes: 0 ok, 1 when a plugin failed to load (or is incompatible), 2 usage errors.
Nothing here imports torch, so listing stays fast.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import Any

from ember import hookspecs
from ember.core import discovery
from ember.core.pluginmanager import spec_argnames
from ember.errors import MisconfigurationError

OK, FAILED, USAGE = 0, 1, 2
_BROKEN = ("failed", "incompatible")


def _hook_lines() -> list[str]:
    """One line per hookspec, in the order hookspecs.py declares them: name(args)  summary."""
    rows = []
    for name in discovery.HOOK_ORDER:
        summary = (inspect.getdoc(getattr(hookspecs, name)) or "").splitlines()[0]
        rows.append((f"{name}({', '.join(spec_argnames(name))})", summary))
    width = max(len(signature) for signature, _ in rows)
    return [f"{signature.ljust(width)}  {summary}" for signature, summary in rows]


def _reports() -> list[discovery.PluginReport]:
    reports = discovery.survey()
    return sorted(reports, key=lambda r: (r.source != "builtin", r.name))


def _exit_code(reports: list[discovery.PluginReport]) -> int:
    return FAILED if any(r.status in _BROKEN for r in reports) else OK


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _list(as_json: bool, tracebacks: bool) -> int:
    reports = _reports()
    if as_json:
        print(json.dumps([r.to_json() for r in reports], indent=2))
        return _exit_code(reports)
    rows: list[tuple[str, ...]] = [("NAME", "STATUS", "SOURCE", "DISTRIBUTION", "HOOKS", "REASON")]
    for r in reports:
        dist = f"{r.distribution} {r.version}" if r.distribution else "-"
        rows.append((r.name, r.status, r.source, dist, str(len(r.hooks)), r.reason or ""))
    print(_table(rows))
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


def _show(name: str) -> int:
    report = next((r for r in _reports() if r.name == name), None)
    if report is None:
        print(f"ember: no plugin named {name!r}; `ember plugins list` shows the installed ones", file=sys.stderr)
        return USAGE
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


def _version() -> int:
    from ember import __version__

    reports = _reports()
    third_party = {
        f"{r.distribution}-{r.version}" for r in reports if r.source == "entrypoint" and r.status == "active"
    }
    print(f"ember {__version__}")
    if third_party:
        print("plugins: " + ", ".join(sorted(third_party)))
    return _exit_code(reports)


# ------------------------------------------------------------------------ ember plugins new
_PYPROJECT = Template("""\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "ember-$name"
version = "0.1.0"
description = "$title: an ember plugin"
requires-python = ">=3.10"
dependencies = ["ember>=$ember"]

[project.entry-points."ember.plugins"]
$entry = "$package.plugin:$cls"

[tool.setuptools.packages.find]
where = ["src"]
""")

_INIT = Template('''\
"""ember-$name: $title, an ember plugin.

Installed, it is loaded by every ember Trainer (entry point ``$entry`` in
the group ``ember.plugins``); ``ember plugins show $entry`` describes it.
"""

from $package.plugin import $cls

__all__ = ["$cls"]
''')

_PLUGIN = Template('''\
"""$cls: counts the training batches of a run and reports them at the end."""

from __future__ import annotations

from typing import Any

import ember


class $cls(ember.Callback):
    """Counts training batches; the count is kept in checkpoints."""

    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.batches += 1

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        print(f"$entry: {self.batches} training batches")

    def state_dict(self) -> dict[str, Any]:
        return {"batches": self.batches}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batches = state_dict["batches"]
''')

_TEST = Template('''\
"""Tests for $cls, with the fixtures of ember.testing (a pytest plugin installed with ember)."""

from $package import $cls


def test_counts_training_batches(trainer_factory, tiny_model):
    counter = $cls()
    trainer_factory(callbacks=[counter], max_epochs=2, limit_train_batches=3).fit(tiny_model)
    assert counter.batches == 6


def test_is_loaded_by_every_trainer_once_installed(trainer_factory):
    trainer = trainer_factory()
    assert [type(c) for c in trainer.callbacks].count($cls) == 1


def test_hooks_run_in_order(trainer_factory, tiny_model, hook_recorder):
    trainer_factory(callbacks=[$cls(), hook_recorder], max_epochs=1, limit_train_batches=2).fit(tiny_model)
    hook_recorder.assert_sequence(["on_train_batch_end", "on_train_batch_end"], hooks=["on_train_batch_end"])
''')

_README = Template("""\
# ember-$name

$title: an ember plugin. Once installed, every ember Trainer loads it.

```console
pip install -e . && python -m pytest
ember plugins show $entry
```
""")


def _new(name: str, directory: str) -> int:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
        print(f"ember: plugin name {name!r}: use letters, digits, '-' and '_', starting with a letter", file=sys.stderr)
        return USAGE
    from ember.version import __version__

    entry = name.lower().replace("-", "_")
    words = [w for w in entry.split("_") if w]
    fields = {
        "name": name.lower(),
        "entry": entry,
        "package": f"ember_{entry}",
        "cls": "".join(w.capitalize() for w in words),
        "title": " ".join(words).capitalize(),
        "ember": ".".join(__version__.split(".")[:2]),
    }
    root = Path(directory) / f"ember-{fields['name']}"
    if root.exists():
        print(f"ember: {root} exists already; choose another name or --directory", file=sys.stderr)
        return USAGE
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"src/{fields['package']}/__init__.py": _INIT,
        f"src/{fields['package']}/plugin.py": _PLUGIN,
        "tests/test_plugin.py": _TEST,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.substitute(fields), encoding="utf-8")
        print(f"created {path}")
    print(f"\nnext: pip install -e {root} && python -m pytest {root}")
    return OK


# ------------------------------------------------------------------------------- main
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ember", description="ember: pluggy-based training for PyTorch")
    parser.add_argument("--version", action="store_true", help="print ember's version and active plugins")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("hooks", help="list every hook with its arguments")
    plugins = commands.add_parser("plugins", help="list, inspect or create plugins")
    actions = plugins.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every installed plugin with its status")
    listing.add_argument("--json", action="store_true", help="print a JSON list of objects")
    listing.add_argument("--traceback", action="store_true", help="print the traceback of each failed plugin")
    show = actions.add_parser("show", help="one plugin's docstring, hooks, parameters and origin")
    show.add_argument("name", help="the plugin's entry-point name")
    new = actions.add_parser("new", help="scaffold a plugin package: pyproject, a Callback and its test")
    new.add_argument("name", help="the plugin's name; the package is ember-NAME")
    new.add_argument("--directory", default=".", help="where to create ember-NAME/ (default: here)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 a plugin failed to load, 2 usage error)."""
    parser = _parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit:  # argparse's usage errors (2) and --help (0)
        return exit.code if isinstance(exit.code, int) else USAGE
    try:
        if arguments.version:
            return _version()
        if arguments.command == "hooks":
            print("\n".join(_hook_lines()))
            return OK
        if arguments.command == "plugins":
            if arguments.action == "list":
                return _list(arguments.json, arguments.traceback)
            if arguments.action == "show":
                return _show(arguments.name)
            return _new(arguments.name, arguments.directory)
    except MisconfigurationError as error:  # a bad EMBER_* variable or [tool.ember] table
        print(f"ember: {error}", file=sys.stderr)
        return USAGE
    except BrokenPipeError:  # `ember plugins list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    parser.print_help(sys.stderr)
    return USAGE
