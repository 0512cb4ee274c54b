"""Pickling and deep-copying a Trainer: its plugin manager and hook tables are rebuilt, not copied.

The plugin manager holds compiled adapters and pluggy's callers, and a run's
optimizer wrappers hold those callers; none of them pickle. What they are
built from does: the registered plugins in call order. A plugin that is a
module travels by its import name.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer

#: Trainer attributes rebuilt after unpickling instead of being pickled.
_REBUILT = ("plugin_manager", "_callers", "_optimization", "_stepping_optimizers")


@dataclasses.dataclass(frozen=True)
class _ModuleByName:
    name: str


def _portable(plugin: Any) -> Any:
    return _ModuleByName(plugin.__name__) if isinstance(plugin, types.ModuleType) else plugin


def _resolved(plugin: Any) -> Any:
    return importlib.import_module(plugin.name) if isinstance(plugin, _ModuleByName) else plugin


def trainer_state(trainer: Trainer) -> dict[str, Any]:
    """The Trainer's ``__dict__`` without what does not pickle, plus the registered plugins to rebuild it from."""
    state = {key: value for key, value in vars(trainer).items() if key not in _REBUILT}
    from ember.core.pluginmanager import CallbackHooks

    manager = trainer.plugin_manager
    state["_registered"] = [
        (name, _portable(face.callback if isinstance(face, CallbackHooks) else face), manager.origin(name))
        for name, face in manager.list_name_plugin()
        if face is not None
    ]
    state["_user_callbacks"] = [_portable(p) for p in trainer._user_callbacks]
    state["_plugin_records"] = [dataclasses.replace(r, plugin=_portable(r.plugin)) for r in trainer._plugin_records]
    state["_had_callers"] = bool(trainer._callers)
    return state


def restore_trainer(trainer: Trainer, state: dict[str, Any]) -> None:
    """Set the pickled state and register the plugins again, in their order, on a new plugin manager."""
    from ember.core.pluginmanager import PluginManager

    registered = state.pop("_registered")
    had_callers = state.pop("_had_callers")
    state["_user_callbacks"] = [_resolved(p) for p in state["_user_callbacks"]]
    state["_plugin_records"] = [dataclasses.replace(r, plugin=_resolved(r.plugin)) for r in state["_plugin_records"]]
    vars(trainer).update(state)
    trainer.plugin_manager = PluginManager()
    for name, plugin, origin in registered:
        trainer.plugin_manager.register(_resolved(plugin), name=name, origin=origin)
    trainer._callers = trainer.plugin_manager.callers() if had_callers else {}
    trainer._optimization = None
    trainer._stepping_optimizers = []
