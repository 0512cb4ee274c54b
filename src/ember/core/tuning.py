"""What the tuners (BatchSizeFinder, LearningRateFinder) need from the core: short trial runs inside a fit.

A tuner runs at ``on_fit_start``, trains a few steps to measure something
(does this batch size fit in memory? how does the loss move as the LR grows?)
and must then leave the run as it found it. :class:`RunSnapshot` keeps the
weights, the optimizer, scheduler and precision states, the modules' train
modes and the random state in host memory, so no temporary file is written.
:func:`run_training_steps` runs N optimizer steps of the fit loop with only
the given plugins hooked (no other callbacks, no loggers, no sanity check) on
a copy of the progress counters, and puts the Trainer's limits, counters,
metrics, plugins and loaders back afterwards, also when a step raises.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch

from ember.core.metrics import MetricStore
from ember.core.pluginmanager import PluginManager
from ember.core.seed import capture_rng, restore_rng
from ember.core.state import FitProgress

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer

#: Trainer attributes a trial changes and puts back.
_RUN_ATTRIBUTES = (
    "limit_train_batches",
    "limit_val_batches",
    "max_steps",
    "max_epochs",
    "min_epochs",
    "min_steps",
    "num_sanity_val_steps",
    "should_stop",
    "loggers",
    "plugin_manager",
    "fit_progress",
    "lr_scheduler_configs",
    "_metrics",
    "_optimization",
    "_stepping_optimizers",
    "_loaders",
    "_val_enabled",
    "num_training_batches",
    "num_val_batches",
    "val_check_batch",
)


class RunSnapshot:
    """The weights and training state of a running fit, copied to host memory; :meth:`restore` puts them back."""

    def __init__(self, trainer: Trainer) -> None:
        module = trainer.lightning_module
        assert module is not None
        self.trainer = trainer
        self._weights = _to_host(module.state_dict())
        self._modes = [(submodule, submodule.training) for submodule in module.modules()]
        self._optimizers = [_to_host(optimizer.state_dict()) for optimizer in trainer.optimizers]
        self._schedulers = [_to_host(config.scheduler.state_dict()) for config in trainer.lr_scheduler_configs]
        self._precision = _to_host(trainer._precision.state_dict())
        self._rng = capture_rng()

    def restore(self) -> None:
        trainer = self.trainer
        module = trainer.lightning_module
        assert module is not None
        module.load_state_dict(self._weights)
        for submodule, training in self._modes:
            submodule.training = training
        for optimizer in trainer.optimizers:
            optimizer.zero_grad(set_to_none=True)
        for optimizer, state in zip(trainer.optimizers, self._optimizers):
            optimizer.load_state_dict(state)
        for config, state in zip(trainer.lr_scheduler_configs, self._schedulers):
            config.scheduler.load_state_dict(state)
        trainer._precision.load_state_dict(self._precision)
        restore_rng(self._rng)


def run_training_steps(
    trainer: Trainer,
    steps: int,
    plugins: Iterable[object] = (),
    *,
    limit_train_batches: int | float | None = None,
    limit_val_batches: int | float | None = None,
    lr_scheduler_configs: list[Any] | None = None,
) -> list[Any]:
    """Train ``steps`` optimizer steps from the current weights, with only ``plugins`` hooked; return the train loaders.

    The fit loop runs as usual (the module's hooks, validation at its usual
    points under ``limit_val_batches``) over freshly loaded dataloaders,
    starting a new epoch and stopping after ``steps`` steps or when a plugin
    sets ``trainer.should_stop``, whatever ``max_epochs`` says. Weights and
    optimizer state are not restored here: take a :class:`RunSnapshot` first.
    """
    from ember.core.loops.fit import run_fit
    from ember.core.loops.optimization import Optimization

    saved = {name: getattr(trainer, name) for name in _RUN_ATTRIBUTES}
    saved_stage = trainer.state.stage
    progress = trainer.fit_progress
    try:
        trainer.fit_progress = FitProgress(
            epoch=progress.epoch,
            global_step=progress.global_step,
            total_batches=progress.total_batches,
            stepped_batches=progress.stepped_batches,
        )
        trainer.max_steps = progress.global_step + steps
        trainer.max_epochs, trainer.min_epochs, trainer.min_steps = -1, None, None
        trainer.num_sanity_val_steps, trainer.should_stop, trainer.loggers = 0, False, []
        if limit_train_batches is not None:
            trainer.limit_train_batches = limit_train_batches
        if limit_val_batches is not None:
            trainer.limit_val_batches = limit_val_batches
        if lr_scheduler_configs is not None:
            trainer.lr_scheduler_configs = lr_scheduler_configs
        trainer._metrics = MetricStore()
        trainer._metrics.sync = trainer.strategy.reduce
        trainer._loaders, trainer._val_enabled = {}, None
        trainer.plugin_manager = PluginManager()
        for plugin in plugins:
            trainer.plugin_manager.register(plugin)
        trainer._refresh_hook_table()
        trainer._optimization = Optimization(trainer)
        trainer._optimization._warned_non_finite = True  # trials probe diverging settings on purpose
        run_fit(trainer)
        return list(trainer._loaders.get("train", []))
    finally:
        for name, value in saved.items():
            setattr(trainer, name, value)
        trainer.state.stage = saved_stage
        trainer._refresh_hook_table()


# --------------------------------------------------- tuned attributes
def attribute_holders(trainer: Trainer, name: str) -> list[Any]:
    """Where ``name`` lives: the module, its ``hparams``, the datamodule, its ``hparams`` (those that have it).

    A tuner reads the last holder (the datamodule wins, since it builds the
    dataloaders) and writes the value to all of them.
    """
    holders: list[Any] = []
    for owner in (trainer.lightning_module, trainer.datamodule):
        if owner is None:
            continue
        if hasattr(owner, name):
            holders.append(owner)
        hparams = getattr(owner, "hparams", None)
        if isinstance(hparams, dict) and name in hparams:
            holders.append(hparams)
    return holders


def set_tuned_attribute(trainer: Trainer, name: str, value: Any) -> None:
    for holder in attribute_holders(trainer, name):
        if isinstance(holder, dict):
            holder[name] = value
        else:
            setattr(holder, name, value)


def _to_host(value: Any) -> Any:
    """A deep copy of ``value`` whose tensors live in host memory (so a GPU search does not pay for it)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        copied = type(value)((key, _to_host(item)) for key, item in value.items())
        if hasattr(value, "_metadata"):  # module state dicts carry per-layer versions
            copied._metadata = copy.deepcopy(value._metadata)  # type: ignore[attr-defined]
        return copied
    if isinstance(value, list):
        return [_to_host(item) for item in value]
    if isinstance(value, tuple):
        items = [_to_host(item) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    return copy.deepcopy(value)
