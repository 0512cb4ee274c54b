"""Checkpoint contents and IO: what a checkpoint holds, atomic writes, and restoring a run from one.

A checkpoint is a dict saved with ``torch.save``: the model's ``state_dict``,
optimizer and scheduler states, the precision scaler, progress counters and
random state (``loops``), the module's hyperparameters, each callback's state
under its ``state_key``, the DataModule's and loggers' state, and the ember
version. Files load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ember.callback import Callback
from ember.errors import CheckpointError, EmberWarning, MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer


# ------------------------------------------------------------------ contents
def dump_checkpoint(trainer: Trainer, weights_only: bool = False) -> dict[str, Any]:
    """Assemble the checkpoint of ``trainer``'s current run (nothing is written)."""
    from ember import __version__

    module = trainer.lightning_module
    assert module is not None
    progress = trainer.fit_progress
    checkpoint: dict[str, Any] = {
        "epoch": progress.epoch,
        "global_step": progress.global_step,
        "ember_version": __version__,
        "state_dict": module.state_dict(),
        "loops": {"fit": progress.state_dict()},
    }
    if not weights_only:
        checkpoint["callbacks"] = collect_callback_states(trainer)
        checkpoint["optimizer_states"] = [optimizer.state_dict() for optimizer in trainer.optimizers]
        checkpoint["lr_schedulers"] = [config.scheduler.state_dict() for config in trainer.lr_scheduler_configs]
        checkpoint["precision"] = trainer._precision.state_dict()
        checkpoint["loggers"] = {type(logger).__qualname__: logger.state_dict() for logger in trainer.loggers}
    hparams = getattr(module, "_hparams", None)
    if hparams:
        checkpoint["hyper_parameters"] = dict(hparams)
    datamodule = trainer.datamodule
    if datamodule is not None:
        if getattr(datamodule, "_hparams", None):
            checkpoint["datamodule_hyper_parameters"] = dict(datamodule._hparams)
        state = datamodule.state_dict()
        if state:
            checkpoint[type(datamodule).__qualname__] = state
    if not weights_only:
        trainer._fx = "on_save_checkpoint"
        caller = trainer.plugin_manager.hook.on_save_checkpoint
        if caller.get_hookimpls():
            caller(trainer=trainer, pl_module=module, checkpoint=checkpoint)
    module.on_save_checkpoint(checkpoint)
    return checkpoint


def collect_callback_states(trainer: Trainer) -> dict[str, Any]:
    """Each plugin's ``state_dict()`` under its state key; empty states are left out."""
    states: dict[str, Any] = {}
    for name, plugin, function in trainer.plugin_manager.implementations("state_dict"):
        state = function()
        if state:
            states[state_key_of(plugin, name)] = state
    return states


def state_key_of(plugin: object, name: str) -> str:
    """A Callback's ``state_key``; a plain plugin's registered name."""
    return plugin.state_key if isinstance(plugin, Callback) else name


# ------------------------------------------------------------------------ IO
def save_checkpoint(trainer: Trainer, filepath: str | os.PathLike[str], weights_only: bool = False) -> None:
    """Assemble and write a checkpoint; only global rank 0 writes, every rank waits for it."""
    checkpoint = dump_checkpoint(trainer, weights_only)
    if trainer.is_global_zero:
        atomic_save(checkpoint, filepath)
    trainer.strategy.barrier("save_checkpoint")


def atomic_save(obj: Any, filepath: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary file beside ``filepath``, fsync, then rename over it.

    A save killed halfway leaves the previous file at ``filepath`` intact and
    at most a ``.tmp`` file beside it; the temporary file lives in the target
    folder so the rename never crosses filesystems.
    """
    path = Path(filepath)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    try:
        folder = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def load_checkpoint_file(
    path: str | os.PathLike[str], map_location: Any = "cpu", weights_only: bool = True
) -> dict[str, Any]:
    """Read a checkpoint; a clear error naming the file for anything that is not a readable ember checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {str(path)!r} is empty (0 bytes)")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read: {type(error).__name__}: {error}") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"checkpoint {str(path)!r} is not an ember checkpoint (no 'state_dict' entry)")
    return checkpoint


def resolve_ckpt_path(trainer: Trainer, ckpt_path: str | os.PathLike[str]) -> Path | None:
    """``"last"`` and ``"best"`` through the ModelCheckpoint callbacks; anything else is a path."""
    if ckpt_path in ("last", "best"):
        callbacks = [c for c in trainer.checkpoint_callbacks if hasattr(c, "best_model_path")]
        if not callbacks:
            raise MisconfigurationError(f"ckpt_path={ckpt_path!r} needs a ModelCheckpoint callback in the Trainer")
        attribute = "last_model_path" if ckpt_path == "last" else "best_model_path"
        found = [getattr(c, attribute) for c in callbacks if getattr(c, attribute, "")]
        if not found:
            raise MisconfigurationError(f"ckpt_path={ckpt_path!r}: no checkpoint has been saved yet")
        return Path(found[0])
    return Path(ckpt_path)


def load_for_resume(path: Path) -> dict[str, Any]:
    return load_checkpoint_file(path)


# ------------------------------------------------------------------- restore
def restore_modules_and_callbacks(trainer: Trainer, checkpoint: dict[str, Any]) -> None:
    """Module on_load_checkpoint, its weights, the DataModule, then callbacks' on_load_checkpoint and load_state_dict."""
    module = trainer.lightning_module
    assert module is not None
    trainer._fx = "on_load_checkpoint"
    module.on_load_checkpoint(checkpoint)
    load_model_state(module, checkpoint["state_dict"], strict=True, path=trainer.ckpt_path)
    datamodule = trainer.datamodule
    if datamodule is not None and type(datamodule).__qualname__ in checkpoint:
        datamodule.load_state_dict(checkpoint[type(datamodule).__qualname__])
    caller = trainer.plugin_manager.hook.on_load_checkpoint
    if caller.get_hookimpls():
        caller(trainer=trainer, pl_module=module, checkpoint=checkpoint)
    states = dict(checkpoint.get("callbacks", {}))
    for name, plugin, function in trainer.plugin_manager.implementations("load_state_dict"):
        key = state_key_of(plugin, name)
        if key in states:
            function(copy.deepcopy(states.pop(key)))
    saving = {state_key_of(p, n) for n, p, _ in trainer.plugin_manager.implementations("state_dict")}
    unmatched = sorted(set(states) - saving)
    if unmatched:
        warnings.warn(
            f"the checkpoint holds state for callbacks this Trainer does not have: {unmatched}; "
            "pass the callbacks that wrote the checkpoint to the Trainer to restore them",
            EmberWarning,
            stacklevel=2,
        )


def restore_training_state(trainer: Trainer, checkpoint: dict[str, Any]) -> None:
    """Optimizers, schedulers, the precision scaler and the loop progress."""
    if "optimizer_states" not in checkpoint:
        raise CheckpointError(
            f"checkpoint {trainer.ckpt_path!r} was saved with weights_only=True and cannot resume training; "
            "load its weights with Module.load_from_checkpoint instead"
        )
    for optimizer, state in zip(trainer.optimizers, checkpoint["optimizer_states"]):
        optimizer.load_state_dict(state)
    for config, state in zip(trainer.lr_scheduler_configs, checkpoint.get("lr_schedulers", [])):
        config.scheduler.load_state_dict(state)
    trainer._precision.load_state_dict(checkpoint.get("precision", {}))
    progress = trainer.fit_progress
    progress.load_state_dict(checkpoint.get("loops", {}).get("fit", {}))
    if progress.epoch_done:
        progress.epoch += 1
        progress.batches_in_epoch = 0
        progress.epoch_done = False
        progress.epoch_rng = None


def load_model_state(module: torch.nn.Module, state: dict[str, Any], strict: bool, path: Any) -> None:
    """``module.load_state_dict`` with an error listing missing and unexpected keys."""
    missing, unexpected = [], []
    own = module.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    if strict and (missing or unexpected):
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not match the model: missing keys {missing}, unexpected keys "
            f"{unexpected}; pass strict=False to load what matches"
        )
    module.load_state_dict(state, strict=strict)


def load_module_from_checkpoint(
    cls: type[Any], path: Any, map_location: Any, strict: bool, weights_only: bool, overrides: dict[str, Any]
) -> Any:
    """Build ``cls`` from a checkpoint's hyperparameters (overridden by ``overrides``) and load its weights."""
    checkpoint = load_checkpoint_file(path, map_location=map_location or "cpu", weights_only=weights_only)
    hparams = {**checkpoint.get("hyper_parameters", {}), **overrides}
    module = cls(**hparams)
    module.on_load_checkpoint(checkpoint)
    load_model_state(module, checkpoint["state_dict"], strict=strict, path=path)
    if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
        module.to(map_location)
    return module
