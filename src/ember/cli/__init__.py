"""The ``ember`` command (also ``python -m ember``): what is installed, what loads, and what can be hooked.

* ``ember plugins list [--json] [--traceback]`` -- every plugin, built-ins included, with its status;
* ``ember plugins show NAME`` -- one plugin's docstring, hooks, parameters, state_key and origin;
* ``ember plugins new NAME`` -- a plugin package that installs and passes its test as generated;
* ``ember plugins install|uninstall NAME...`` -- pip in ember's environment, rolled back unless a working plugin;
* ``ember checkpoint consolidate DIR OUT`` -- a distributed checkpoint folder as one checkpoint file;
* ``ember hooks`` -- every hook with its arguments and one-line summary;
* ``ember fit|validate|test|predict --config run.yaml [--KEY VALUE ...]`` -- a run from a config
  (:class:`ember.cli.CLI`, also importable as ``LightningCLI``, loaded on first use);
* ``ember --version`` -- ember's version and the active third-party plugins, as pytest's header shows them.

Each command family lives in its own module with a ``register(commands)``
function that adds its subparser and sets ``run``; :data:`COMMANDS` lists them.
Exit codes: 0 ok, 1 when a plugin failed to load (or is incompatible), 2 usage errors.
Nothing here imports torch or jsonargparse, so listing stays fast; the run commands load them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module

from ember import _lazy
from ember.cli.common import OK, USAGE
from ember.errors import MisconfigurationError

#: Modules under ember.cli that each add one command family.
COMMANDS: tuple[str, ...] = ("checkpoint", "hooks", "plugins", "run")

#: Names loaded from ember.cli.app on first use (it imports torch and jsonargparse).
_LAZY = {"CLI": "ember.cli.app", "LightningCLI": "ember.cli.app"}

__getattr__, __dir__ = _lazy.attributes(__name__, _LAZY, listed=_LAZY)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ember", description="ember: pluggy-based training for PyTorch")
    parser.add_argument("--version", action="store_true", help="print ember's version and active plugins")
    commands = parser.add_subparsers(dest="command")
    for name in COMMANDS:
        import_module(f"ember.cli.{name}").register(commands)
    from ember.cli import extensions

    extensions.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 a plugin failed to load, 2 usage error)."""
    arguments_given = list(sys.argv[1:] if argv is None else argv)
    from ember.cli.run import RUN_COMMANDS, run_command, subcommand_first

    if subcommand_first(arguments_given)[:1] and subcommand_first(arguments_given)[0] in RUN_COMMANDS:
        return run_command(subcommand_first(arguments_given))
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
