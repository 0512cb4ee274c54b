"""The ``ember`` command (also ``python -m ember``): what is installed, what loads, and what can be hooked.

* ``ember plugins list [--json] [--traceback]`` -- every plugin, built-ins included, with its status;
* ``ember plugins show NAME`` -- one plugin's docstring, hooks, parameters, state_key and origin;
* ``ember plugins new NAME`` -- a plugin package that installs and passes its test as generated;
* ``ember checkpoint consolidate DIR OUT`` -- a distributed checkpoint folder as one checkpoint file;
* ``ember hooks`` -- every hook with its arguments and one-line summary;
* ``ember --version`` -- ember's version and the active third-party plugins, as pytest's header shows them.

Each command family lives in its own module with a ``register(commands)``
function that adds its subparser and sets ``run``; :data:`COMMANDS` lists them.
Exit codes: 0 ok, 1 when a plugin failed to load (or is incompatible), 2 usage errors.
Nothing here imports torch, so listing stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module

from ember.cli.common import OK, USAGE
from ember.errors import MisconfigurationError

#: Modules under ember.cli that each add one command family.
COMMANDS: tuple[str, ...] = ("checkpoint", "hooks", "plugins")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ember", description="ember: pluggy-based training for PyTorch")
    parser.add_argument("--version", action="store_true", help="print ember's version and active plugins")
    commands = parser.add_subparsers(dest="command")
    for name in COMMANDS:
        import_module(f"ember.cli.{name}").register(commands)
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
            from ember.cli.plugins import version

            return version()
        run = getattr(arguments, "run", None)
        if run is not None:
            return int(run(arguments))
    except MisconfigurationError as error:  # a bad EMBER_* variable or [tool.ember] table
        print(f"ember: {error}", file=sys.stderr)
        return USAGE
    except BrokenPipeError:  # `ember plugins list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    parser.print_help(sys.stderr)
    return USAGE
