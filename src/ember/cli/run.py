"""``ember fit|validate|test|predict``: a run from a config file and flags, dispatched to :class:`ember.cli.CLI`.

Registered with argparse only so that ``ember --help`` lists the four
commands; the arguments themselves are read by :mod:`ember.cli.app`, which
imports torch and jsonargparse, so nothing here does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RUN_COMMANDS: tuple[str, ...] = ("fit", "validate", "test", "predict")

_HELP = {
    "fit": "train a model from --config FILE and --KEY VALUE flags",
    "validate": "run the validation loop from a config",
    "test": "run the test loop from a config",
    "predict": "run prediction from a config",
}


def register(commands: Any) -> None:
    """Add the four run commands to ``ember --help``; :func:`main` dispatches them before argparse."""
    for name in RUN_COMMANDS:
        commands.add_parser(name, help=_HELP[name], add_help=False)


def subcommand_first(argv: list[str]) -> list[str]:
    """``--config A fit ...`` -> ``fit --config A ...``: config files are accepted before the subcommand too."""
    index = 0
    while index < len(argv) - 1 and argv[index] == "--config":
        index += 2
    if 0 < index < len(argv) and argv[index] in RUN_COMMANDS:
        return [argv[index], *argv[:index], *argv[index + 1 :]]
    return argv


def run_command(argv: Sequence[str]) -> int:
    """``ember <subcommand> ...``; returns the exit code (2 for a config refused before anything started)."""
    from ember.cli.app import CLI

    try:
        CLI(args=list(argv), prog="ember")
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    return 0
