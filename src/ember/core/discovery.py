"""Which plugins a Trainer loads besides the user's: ember's defaults and installed entry points.

(First version: the built-in defaults only; entry-point discovery follows.)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ember.errors import MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer


@dataclass
class PluginRecord:
    """A plugin a Trainer registers after the user's callbacks."""

    name: str
    plugin: object
    origin: str | None = None
    source: str = "builtin"


#: Built-in plugins active without being asked for: (name, "module:Class", base class the user's instance replaces it by, flag)
DEFAULTS = (
    (
        "model_checkpoint",
        "ember.plugins.model_checkpoint:ModelCheckpoint",
        "ember.callback:Checkpoint",
        "enable_checkpointing",
    ),
    (
        "progress_bar",
        "ember.plugins.tqdm_progress:TQDMProgressBar",
        "ember.plugins.progress_bar:ProgressBar",
        "enable_progress_bar",
    ),
    (
        "model_summary",
        "ember.plugins.model_summary:ModelSummary",
        "ember.plugins.model_summary:ModelSummary",
        "enable_model_summary",
    ),
)


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def plugins_for_trainer(
    trainer: Trainer,
    user_plugins: list[Any],
    enable_checkpointing: bool | None,
    enable_progress_bar: bool | None,
    enable_model_summary: bool | None,
    disable_plugins: Any,
    strict: bool | None,
) -> list[PluginRecord]:
    """The defaults the flags and the user's callbacks leave active, plus a Timer for ``max_time``."""
    flags = {
        "enable_checkpointing": enable_checkpointing,
        "enable_progress_bar": enable_progress_bar,
        "enable_model_summary": enable_model_summary,
    }
    records: list[PluginRecord] = []
    if trainer.max_time is not None:
        timer = _load("ember.plugins.timer:Timer")
        if not any(isinstance(p, timer) for p in user_plugins):
            records.append(PluginRecord("timer", timer(duration=trainer.max_time, interval="step")))
    disabled = set(disable_plugins or ())
    for name, target, replaced_by, flag in DEFAULTS:
        try:
            base = _load(replaced_by)
            plugin_class = _load(target)
        except (ImportError, AttributeError):
            continue
        given = [p for p in user_plugins if isinstance(p, base)]
        if flags[flag] is False:
            if given:
                raise MisconfigurationError(
                    f"Trainer({flag}=False) but callbacks holds {type(given[0]).__name__}; remove one of the two"
                )
            continue
        if given or name in disabled or (trainer.fast_dev_run and name == "model_summary"):
            continue
        records.append(PluginRecord(name, plugin_class()))
    return records
