"""Plugins that extend the ``ember`` command, through :class:`ember.hookspecs.CommandLineHooks`.

A distribution names a module of ``@ember.hookimpl`` functions in the
``ember.cli`` entry-point group; the entry point's name is the plugin's name
shown in ``ember --help``. Such a module should not import torch. One that
fails to import, or whose hook raises, is reported on stderr the way
``ember plugins list`` reports a plugin, and the rest of the command works.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pluggy

from ember import hookspecs
from ember.core.entry_points import CLI_GROUP, EntryPoint, installed
from ember.markers import PROJECT_NAME

GROUP = CLI_GROUP


def _manager() -> tuple[pluggy.PluginManager, dict[str, EntryPoint]]:
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs.CommandLineHooks)
    origins: dict[str, EntryPoint] = {}
    for ep in installed(GROUP):
        if ep.name in origins:
            _report(ep, f"the name is taken by {origins[ep.name].origin}")
            continue
        try:
            manager.register(ep.load(), name=ep.name)
        except Exception as error:  # third-party code: import errors, bad hookimpls
            _report(ep, f"cannot load {ep.value}: {type(error).__name__}: {error}")
            continue
        origins[ep.name] = ep
    return manager, origins


def _report(ep: EntryPoint, reason: str) -> None:
    print(f"ember: command plugin {ep.name} ({ep.origin}) failed: {reason}", file=sys.stderr)


def _call_each(
    hook_name: str, arguments: dict[str, Any], watch: Callable[[], set[str]] = set
) -> list[tuple[EntryPoint, set[str]]]:
    """Call the hook on each plugin in turn, with what ``watch()`` gained during each call; one that raises is reported."""
    manager, origins = _manager()
    done = []
    for name, ep in origins.items():
        others = [plugin for other, plugin in manager.list_name_plugin() if other != name]
        before = watch()
        try:
            manager.subset_hook_caller(hook_name, remove_plugins=others)(**arguments)
        except Exception as error:  # third-party code
            _report(ep, f"{hook_name} raised {type(error).__name__}: {error}")
            continue
        done.append((ep, watch() - before))
    return done


def add_commands(commands: Any) -> None:
    """Let plugins add subcommands; each one's help and ``--help`` name the plugin that adds it."""
    for ep, added in _call_each("ember_add_commands", {"commands": commands}, lambda: set(commands.choices)):
        label = f"(plugin {ep.name}, {ep.origin})"
        for command in added:
            parser = commands.choices[command]
            parser.epilog = f"{parser.epilog}\n\n{label}" if parser.epilog else f"provided by {label}"
            for action in commands._choices_actions:  # argparse keeps each command's help line here
                if action.dest == command:
                    action.help = f"{action.help or ''} {label}".strip()


def add_arguments(parser: Any, subcommand: str) -> None:
    """Let plugins add their config sections to a run's parser; ``--help`` names the plugin beside each option."""
    arguments = {"parser": parser, "subcommand": subcommand}
    for ep, added in _call_each("ember_add_arguments", arguments, lambda: {str(id(a)) for a in parser._actions}):
        for action in parser._actions:
            if str(id(action)) in added:
                action.help = f"{action.help or ''} (plugin {ep.name}, {ep.origin})".strip()
