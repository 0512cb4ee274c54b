"""The ``ember`` command: ``ember hooks``, ``ember --version`` (and ``ember plugins ...``).

Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence

from ember import hookspecs
from ember.core.pluginmanager import HOOK_NAMES, spec_argnames


def _hook_lines() -> list[str]:
    """One line per hookspec, in the order hookspecs.py declares them: name(args)  summary."""
    names = sorted(HOOK_NAMES, key=lambda name: inspect.getsourcelines(getattr(hookspecs, name))[1])
    rows = []
    for name in names:
        summary = (inspect.getdoc(getattr(hookspecs, name)) or "").splitlines()[0]
        rows.append((f"{name}({', '.join(spec_argnames(name))})", summary))
    width = max(len(signature) for signature, _ in rows)
    return [f"{signature.ljust(width)}  {summary}" for signature, summary in rows]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 a plugin failed to load, 2 usage error)."""
    from ember import __version__

    parser = argparse.ArgumentParser(prog="ember", description="ember: pluggy-based training for PyTorch")
    parser.add_argument("--version", action="store_true", help="print ember's version and active plugins")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("hooks", help="list every hook with its arguments")
    arguments = parser.parse_args(argv)
    if arguments.version:
        print(f"ember {__version__}")
        return 0
    if arguments.command == "hooks":
        print("\n".join(_hook_lines()))
        return 0
    parser.print_help(sys.stderr)
    return 2
