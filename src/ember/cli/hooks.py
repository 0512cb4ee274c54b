"""``ember hooks``: every hook with its arguments and one-line summary."""

from __future__ import annotations

import inspect
from typing import Any

from ember import hookspecs
from ember.cli.common import OK
from ember.core import discovery
from ember.core.pluginmanager import spec_argnames


def _hook_lines() -> list[str]:
    """One line per hookspec, in the order hookspecs.py declares them: name(args)  summary."""
    rows = []
    for name in discovery.HOOK_ORDER:
        summary = (inspect.getdoc(getattr(hookspecs, name)) or "").splitlines()[0]
        rows.append((f"{name}({', '.join(spec_argnames(name))})", summary))
    width = max(len(signature) for signature, _ in rows)
    return [f"{signature.ljust(width)}  {summary}" for signature, summary in rows]


def register(commands: Any) -> None:
    """Add ``ember hooks`` to the top-level subcommands."""
    hooks = commands.add_parser("hooks", help="list every hook with its arguments")
    hooks.set_defaults(run=lambda arguments: _print_hooks())


def _print_hooks() -> int:
    print("\n".join(_hook_lines()))
    return OK
