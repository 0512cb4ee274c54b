"""``ember hooks``: every hook with its arguments and one-line summary; ``--order``: who is called when, and why."""

from __future__ import annotations

import inspect
import sys
from typing import Any

from ember import hookspecs
from ember.cli.common import FAILED, OK, USAGE, table
from ember.core import discovery
from ember.core.pluginmanager import PluginManager, spec_argnames
from ember.errors import PluginError
from ember.hookspecs import TWO_WAY_HOOKS


def _hook_lines() -> list[str]:
    """One line per hookspec: Lightning's and the two-way hooks in the order hookspecs.py declares them,
    then those installed distributions declare, each with its distribution."""
    rows = []
    for name in discovery.HOOK_ORDER + TWO_WAY_HOOKS:
        rows.append((f"{name}({', '.join(spec_argnames(name))})", _summary(getattr(hookspecs, name))))
    for name, (spec, origin) in sorted(discovery.declared_hooks().items()):
        rows.append((f"{name}({', '.join(spec.argnames)})", f"{_summary(spec.function)}  [declared by {origin}]"))
    width = max(len(signature) for signature, _ in rows)
    return [f"{signature.ljust(width)}  {summary}" for signature, summary in rows]


def _summary(spec: Any) -> str:
    return (inspect.getdoc(spec) or "").splitlines()[0] if inspect.getdoc(spec) else "(no docstring)"


def register(commands: Any) -> None:
    """Add ``ember hooks`` to the top-level subcommands."""
    hooks = commands.add_parser("hooks", help="list every hook with its arguments")
    hooks.add_argument(
        "--order",
        nargs="?",
        const="",
        metavar="HOOK",
        help="the call order of each hook (or of HOOK) for a default Trainer here, with the reason for each position",
    )
    hooks.set_defaults(
        run=lambda arguments: _print_hooks() if arguments.order is None else _print_order(arguments.order)
    )


def _print_order(hook: str) -> int:
    """Each hook's implementations in call order for a default Trainer here, with why each is where it is."""
    try:
        manager = _project_manager()
    except PluginError as error:  # a required plugin missing, a cycle, strict mode
        print(f"ember: {error}", file=sys.stderr)
        return FAILED
    known = [*discovery.HOOK_ORDER, *TWO_WAY_HOOKS, *sorted(manager.declared_by)]
    if hook and hook not in known:
        import difflib

        close = difflib.get_close_matches(hook, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "; `ember hooks` lists them"
        print(f"ember hooks --order: no hook {hook!r}{hint}", file=sys.stderr)
        return USAGE
    blocks = []
    for name in [hook] if hook else known:
        order = manager.call_order(name)
        if not order and not hook:
            continue
        rows: list[tuple[str, ...]] = [
            (f"{n}.", plugin, manager.origin(plugin) or "-", why) for n, (plugin, _, why) in enumerate(order, 1)
        ]
        body = table(rows) if rows else "(no implementations)"
        blocks.append(name + "\n" + "\n".join("  " + line for line in body.splitlines()))
    print("\n\n".join(blocks) if blocks else "no plugin implements any hook")
    return OK


def _project_manager() -> PluginManager:
    """A plugin manager holding what a default Trainer in this folder would register, constructors not run."""
    from types import SimpleNamespace

    from ember.core.callbacks_list import arrange_callbacks

    manager = PluginManager()
    stand_in = SimpleNamespace(max_time=None, fast_dev_run=False, plugin_manager=manager)
    records = discovery.plugins_for_trainer(stand_in, [], None, None, None, None, None, bare=True)  # type: ignore[arg-type]
    by_id = {id(r.plugin): r for r in records}
    for plugin in arrange_callbacks([r.plugin for r in records]):
        record = by_id[id(plugin)]
        manager.register(plugin, name=record.name, origin=record.origin)
    return manager


def _print_hooks() -> int:
    print("\n".join(_hook_lines()))
    return OK
