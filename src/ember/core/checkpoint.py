"""Checkpoint contents and IO: what a checkpoint holds, atomic writes, safe reads, and resuming from one.

A checkpoint is a dict saved with ``torch.save``: the model's ``state_dict``,
optimizer and scheduler states, the precision scaler, progress counters and
random state (``loops``), the hyperparameters, each callback's state under its
``state_key``, the DataModule's and loggers' state, and the ember version.

Files are read with ``torch.load(weights_only=True)``, which cannot run code
hidden in a pickle. So that this never fails at resume time, everything a
checkpoint holds is checked against the same rules when it is saved, and an
entry that would not load is an error naming who put it there.
"""

from __future__ import annotations

import contextlib
import copy
import glob
import inspect
import io
import os
import re
import shutil
import socket
import sys
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ember.callback import Callback
from ember.core import filesystem
from ember.errors import CheckpointError, EmberWarning, MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer

#: Top-level entries ember writes, and who fills them (for error messages).
_OWNERS = {
    "state_dict": "the model's state_dict()",
    "optimizer_states": "an optimizer's state_dict()",
    "lr_schedulers": "a learning-rate scheduler's state_dict()",
    "precision": "the precision plugin's state_dict()",
    "loops": "ember's loop progress",
    "hyper_parameters": "the model's hyperparameters (save_hyperparameters; leave such values out with ignore=[...])",
    "datamodule_hyper_parameters": "the DataModule's hyperparameters (save_hyperparameters)",
    "loggers": "a logger's state_dict()",
}


# ------------------------------------------------------------------ contents
def dump_checkpoint(trainer: Trainer, weights_only: bool = False) -> dict[str, Any]:
    """Assemble the checkpoint of ``trainer``'s current run (nothing is written).

    Raises :class:`~ember.errors.CheckpointError` if an entry could not be read
    back by ``torch.load(weights_only=True)``.
    """
    from ember import __version__
    from ember.core.seed import capture_rng

    module = trainer.lightning_module
    assert module is not None
    progress = trainer.fit_progress
    owners = dict(_OWNERS)
    checkpoint: dict[str, Any] = {
        "epoch": progress.epoch,
        "global_step": progress.global_step,
        "ember_version": __version__,
        "state_dict": trainer.strategy.module_state_dict(module),
        "loops": {"fit_loop": {**progress.state_dict(), "rng": capture_rng()}},
    }
    if not weights_only:
        checkpoint["loops"]["fit_loop"]["metrics"] = trainer._metrics.state_dict()  # the epoch's self.log values
        checkpoint["callbacks"] = collect_callback_states(trainer)
        checkpoint["optimizer_states"] = [trainer.strategy.optimizer_state(o) for o in trainer.optimizers]
        checkpoint["lr_schedulers"] = [config.scheduler.state_dict() for config in trainer.lr_scheduler_configs]
        checkpoint["precision"] = trainer._precision.state_dict()
        checkpoint["loggers"] = logger_states(trainer.loggers)
    for key, owner in (("hyper_parameters", module), ("datamodule_hyper_parameters", trainer.datamodule)):
        hparams = getattr(owner, "_hparams", None)
        if hparams:
            checkpoint[key] = dict(hparams)
    datamodule = trainer.datamodule
    if datamodule is not None:
        state = datamodule.state_dict()
        if state:
            checkpoint[type(datamodule).__qualname__] = state
            owners[type(datamodule).__qualname__] = f"the DataModule's state_dict() ({type(datamodule).__qualname__})"
    if not weights_only:
        _call_on_save_checkpoint(trainer, checkpoint, owners)
    before = dict(checkpoint)
    trainer._fx = "on_save_checkpoint"
    module.on_save_checkpoint(checkpoint)
    _note_new_entries(before, checkpoint, owners, f"the model's on_save_checkpoint ({type(module).__qualname__})")
    for key, value in checkpoint.items():
        checkpoint[key] = plain_numbers(value)
    check_loadable(checkpoint, owners, trainer)
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


def logger_states(loggers: list[Any]) -> dict[str, Any]:
    """Each logger's ``state_dict()`` under its class name (``Name.1``, ``Name.2`` for repeats)."""
    return {
        key: logger.state_dict() if callable(getattr(logger, "state_dict", None)) else {}
        for key, logger in zip(logger_keys(loggers), loggers)
    }


def logger_keys(loggers: list[Any]) -> list[str]:
    keys: list[str] = []
    for logger in loggers:
        base = type(logger).__qualname__
        repeats = sum(1 for key in keys if key.split(".")[0] == base)
        keys.append(f"{base}.{repeats}" if repeats else base)
    return keys


def _call_on_save_checkpoint(trainer: Trainer, checkpoint: dict[str, Any], owners: dict[str, str]) -> None:
    """Every plugin's on_save_checkpoint, one at a time so that what each adds can be attributed to it."""
    trainer._fx = "on_save_checkpoint"
    manager = trainer.plugin_manager
    caller = manager.hook.on_save_checkpoint
    impls = caller.get_hookimpls()
    arguments = {"trainer": trainer, "pl_module": trainer.lightning_module, "checkpoint": checkpoint}
    if any(impl.wrapper or impl.hookwrapper for impl in impls):
        before = dict(checkpoint)
        caller(**arguments)
        _note_new_entries(before, checkpoint, owners, "a plugin's on_save_checkpoint")
        return
    for impl in reversed(impls):  # pluggy's call order
        before = dict(checkpoint)
        impl.function(*(arguments[name] for name in impl.argnames))
        plugin = manager.plugin_of(impl)
        _note_new_entries(before, checkpoint, owners, f"the on_save_checkpoint of {_describe_plugin(plugin, impl)}")


def _note_new_entries(before: dict[str, Any], after: dict[str, Any], owners: dict[str, str], owner: str) -> None:
    for key, value in after.items():
        if key not in before or before[key] is not value:
            owners[key] = owner


def _describe_plugin(plugin: object, impl: Any) -> str:
    if isinstance(plugin, Callback):
        return f"callback {type(plugin).__qualname__} (state_key {plugin.state_key!r})"
    return f"plugin {impl.plugin_name!r}"


def plain_numbers(obj: Any) -> Any:
    """``obj`` with NumPy scalars (a ``np.float64`` learning rate) replaced by the Python numbers they equal.

    Converted at save time rather than allowed with ``add_safe_globals`` so that
    the file loads under ``torch.load(weights_only=True)`` in any process, with
    or without ember, and loading changes no global state. Containers are
    rebuilt only where something changed.
    """
    kind = type(obj)
    if kind in _PLAIN or kind in _TENSORS:
        return obj
    if kind is dict or kind is OrderedDict:
        items = [(plain_numbers(key), plain_numbers(value)) for key, value in obj.items()]
        changed = any(k is not key or v is not value for (k, v), (key, value) in zip(items, obj.items()))
        return kind(items) if changed else obj
    if kind is list or kind is tuple:
        values = [plain_numbers(value) for value in obj]
        return kind(values) if any(new is not old for new, old in zip(values, obj)) else obj
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(obj, numpy.generic) and kind.__module__ == "numpy":
        return obj.item()
    return obj


# ------------------------------------------------------------ security check
_PLAIN = frozenset({str, int, float, bool, type(None), bytes, complex})
_TENSORS = frozenset({torch.Tensor, torch.nn.Parameter})


def check_loadable(checkpoint: dict[str, Any], owners: dict[str, str], trainer: Trainer | None = None) -> None:
    """Raise CheckpointError naming the entry (and its owner) that ``torch.load(weights_only=True)`` would refuse."""
    for key, value in checkpoint.items():
        found = _first_unloadable(value, [key])
        if found is None:
            continue
        path, obj, reason = found
        where = "checkpoint" + "".join(f"[{part!r}]" for part in path)
        if key == "callbacks" and len(path) > 1:
            owner = _callback_owner(trainer, path[1])
        else:
            owner = owners.get(key, "an on_save_checkpoint hook")
        raise CheckpointError(
            f"cannot save a checkpoint: {owner} put a {type(obj).__module__}.{type(obj).__qualname__} at {where}, "
            f"which torch.load(weights_only=True) cannot read back ({reason}). Store plain values instead "
            "(tensors, numbers, strings, and lists, tuples and dicts of them), or register the type with "
            "torch.serialization.add_safe_globals in every process that saves or loads it"
        )


def _callback_owner(trainer: Trainer | None, key: str) -> str:
    for callback in trainer.callbacks if trainer is not None else []:
        if callback.state_key == key:
            return f"callback {type(callback).__qualname__} (state_key {key!r}) in its state_dict()"
    return f"the plugin with state key {key!r} in its state_dict()"


def _first_unloadable(obj: Any, path: list[Any]) -> tuple[list[Any], Any, str] | None:
    kind = type(obj)
    if kind in _PLAIN or kind in _TENSORS or kind.__name__ == "DTensor":  # DTensors go to DCP, not to pickle
        return None
    if kind is dict or kind is OrderedDict:
        for key, value in obj.items():
            found = _first_unloadable(key, [*path, f"<key {key!r}>"]) or _first_unloadable(value, [*path, key])
            if found is not None:
                return found
        return None
    if kind is list or kind is tuple:
        for index, value in enumerate(obj):
            found = _first_unloadable(value, [*path, index])
            if found is not None:
                return found
        return None
    reason = _refusal(obj)
    return None if reason is None else (path, obj, reason)


def _refusal(obj: Any) -> str | None:
    """Why ``torch.load(weights_only=True)`` would not read ``obj`` back; None if it would."""
    buffer = io.BytesIO()
    try:
        torch.save(obj, buffer)
        buffer.seek(0)
        torch.load(buffer, weights_only=True)
    except Exception as error:  # noqa: BLE001 - pickling and unpickling raise many kinds
        return _torch_reason(error)
    return None


def _torch_reason(error: BaseException) -> str:
    """The line of torch's (long) weights_only message that says what was refused."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "nsupported" in line:
            line = re.sub(r"\x1b\[[0-9;]*m", "", line).removeprefix("WeightsUnpickler error: ")
            return line.split(". ")[0].rstrip(".")
    return f"{type(error).__name__}: {lines[0] if lines else error!r}"


# ------------------------------------------------------------------------ IO
def save_checkpoint(trainer: Trainer, filepath: str | os.PathLike[str], weights_only: bool = False) -> None:
    """Assemble and write a checkpoint; only global rank 0 writes, every rank waits for it."""
    checkpoint = dump_checkpoint(trainer, weights_only)
    if trainer.strategy.writes_distributed_checkpoints:
        from ember.core.distributed_checkpoint import save_distributed

        save_distributed(trainer, checkpoint, filepath)
        return
    if trainer.is_global_zero:
        atomic_save(checkpoint, filepath)
    trainer.strategy.barrier("save_checkpoint")


def atomic_save(obj: Any, filepath: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary file beside ``filepath``, fsync, then rename over it.

    ``filepath`` may be an fsspec URL (``memory://``, ``s3://`` ...): the
    bytes are then written to a temporary object beside it and moved over it
    (see :func:`ember.core.filesystem.write_then_move`).

    A save killed halfway leaves the previous file at ``filepath`` intact and
    at most a hidden ``.NAME.tmp-HOST-PID`` file beside it, which the next
    save to that path removes once its process is gone. The temporary file
    lives in the target folder so that the rename never crosses filesystems
    and no other disk has to hold a second copy.
    """
    if filesystem.is_remote(filepath):
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        name = filesystem.normalize(filepath).rstrip("/").rsplit("/", 1)[-1]
        filesystem.write_then_move(buffer.getvalue(), filepath, f".{name}.tmp-{socket.gethostname()}-{os.getpid()}")
        return
    path = Path(filesystem.normalize(filepath))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{_temporary_prefix(path)}{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    _remove_stale_temporaries(path)


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}.tmp-{socket.gethostname()}-"


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable, where the platform can fsync a folder."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files that saves to ``path`` on this host left when their process was killed."""
    prefix = _temporary_prefix(path)
    for leftover in path.parent.glob(glob.escape(prefix) + "*"):
        pid = leftover.name[len(prefix) :]
        if pid.isdigit() and not _process_alive(int(pid)):
            leftover.unlink(missing_ok=True)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[str]:
    """Delete what killed saves left in ``folder``: ``.NAME.tmp-HOST-PID`` files and folders (and a distributed
    save's ``.NAME.old-HOST-PID``) written on this host by a process that is gone; return their names.

    A concurrent run's temporaries are kept: its process is still alive. Other hosts' are kept too:
    their PIDs mean nothing here.
    """
    host = socket.gethostname()
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            for kind in ("tmp", "old"):
                head, marker, pid = entry.name.rpartition(f".{kind}-{host}-")
                if marker and head.startswith(".") and len(head) > 1 and pid.isdigit():
                    if not _process_alive(int(pid)):
                        if entry.is_dir(follow_symlinks=False):
                            shutil.rmtree(entry.path, ignore_errors=True)
                        else:
                            Path(entry.path).unlink(missing_ok=True)
                        removed.append(entry.name)
                    break
    return removed


def unwritable_folder(folder: str | os.PathLike[str]) -> str | None:
    """Why files cannot be written in ``folder`` (created if missing), or None when they can."""
    path = Path(folder).absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable by this process"
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:
        pass  # it exists but is not ours
    return True


def load_checkpoint_file(
    path: str | os.PathLike[str], map_location: Any = "cpu", weights_only: bool = True, full: bool = True
) -> dict[str, Any]:
    """Read a checkpoint; one clear error naming the file for anything that is not a readable ember checkpoint.

    :param weights_only: False unpickles arbitrary objects, which can run code: only for files you trust.
    :param full: for a distributed checkpoint (a folder), read its shards now; False leaves them for a sharded model.
    """
    name = filesystem.normalize(path)
    if filesystem.isdir(name):
        from ember.core.distributed_checkpoint import is_distributed_checkpoint, read_distributed

        if not filesystem.is_remote(name) and is_distributed_checkpoint(Path(name)):
            return read_distributed(Path(name), weights_only, full)
        raise CheckpointError(f"checkpoint {name!r} is a folder, not a checkpoint file or a distributed checkpoint")
    if not filesystem.isfile(name):
        raise CheckpointError(f"checkpoint {name!r} does not exist")
    if filesystem.is_remote(name):
        with filesystem.open_file(name, "rb") as handle:
            source: Any = io.BytesIO(handle.read())
        size = len(source.getbuffer())
    else:
        source = Path(name)
        size = source.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {name!r} is empty (0 bytes)")
    if isinstance(source, io.BytesIO):
        magic = bytes(source.getbuffer()[:4])
    else:
        with open(source, "rb") as handle:
            magic = handle.read(4)
    if magic != b"PK\x03\x04":
        raise CheckpointError(f"checkpoint {name!r} is not a file written by torch.save (it is not a zip archive)")
    if not zipfile.is_zipfile(source):
        raise CheckpointError(f"checkpoint {name!r} is truncated or corrupt ({size} bytes; its zip archive has no end)")
    if isinstance(source, io.BytesIO):
        source.seek(0)
    try:
        checkpoint = torch.load(source, map_location=map_location, weights_only=weights_only)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise _read_error(name, error, weights_only) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        found = sorted(map(str, checkpoint))[:10] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"checkpoint {name!r} is not an ember checkpoint: no 'state_dict' entry (found {found})")
    _check_version(checkpoint, name)
    return checkpoint


def _read_error(name: str, error: Exception, weights_only: bool) -> CheckpointError:
    text = str(error)
    if weights_only and "Weights only load failed" in text:
        return CheckpointError(
            f"checkpoint {name!r} holds a pickled object that safe loading refuses ({_torch_reason(error)}); "
            "such an object can run code when loaded, so it was not loaded. Only if you trust the file, "
            "load it with weights_only=False"
        )
    return CheckpointError(f"checkpoint {name!r} is corrupt or not a torch checkpoint: {_torch_reason(error)}")


def _check_version(checkpoint: dict[str, Any], name: str) -> None:
    from ember import __version__

    saved = str(checkpoint.get("ember_version", ""))
    if _major(saved) > _major(__version__):
        warnings.warn(
            f"checkpoint {name!r} was written by ember {saved}, a newer major version than this ember "
            f"({__version__}); its contents may not restore correctly",
            EmberWarning,
            stacklevel=3,
        )


def _major(version: str) -> int:
    match = re.match(r"\d+", version)
    return int(match.group()) if match else -1


# ----------------------------------------------------------------- ckpt_path
def resolve_ckpt_path(trainer: Trainer, ckpt_path: str | os.PathLike[str]) -> str | None:
    """``"last"`` and ``"best"`` through the checkpoint callbacks, as Lightning resolves them; else a path or URL.

    ``"best"`` is the first ModelCheckpoint's ``best_model_path``. ``"last"``
    is the newest of the checkpoint callbacks' last checkpoints (their
    ``last_model_path``, ``last*.ckpt`` files in their folder, an
    OnExceptionCheckpoint's file); with none on disk it warns and loads nothing.
    """
    fn = trainer.state.fn.value if trainer.state.fn is not None else "fit"
    if ckpt_path == "best":
        callback = trainer.checkpoint_callback
        if callback is None:
            raise MisconfigurationError(f'{fn}(ckpt_path="best") needs a ModelCheckpoint callback in the Trainer')
        if len(trainer.checkpoint_callbacks) > 1:
            warnings.warn(
                f'{fn}(ckpt_path="best") with several checkpoint callbacks uses the first one\'s best model',
                EmberWarning,
                stacklevel=4,
            )
        best = getattr(callback, "best_model_path", "")
        if not best:
            raise MisconfigurationError(
                f'{fn}(ckpt_path="best"): {type(callback).__qualname__} has not saved a best model yet '
                "(best_model_path is empty); pass a checkpoint file instead"
            )
        return filesystem.normalize(best)
    if ckpt_path == "last":
        candidates = {path for callback in trainer.checkpoint_callbacks for path in _last_candidates(callback)}
        existing = [path for path in candidates if filesystem.exists(path)]  # a distributed checkpoint is a folder
        if not existing:
            from ember.core.autoresume import previous_last_checkpoint
            from ember.core.messages import info

            previous = previous_last_checkpoint(trainer)  # an earlier version_N of the same logger (autoresume.py)
            if previous is not None:
                info(f'{fn}(ckpt_path="last") resumes from the previous run\'s {previous}')
                return previous
            warnings.warn(
                f'{fn}(ckpt_path="last") found no last checkpoint in this run or an earlier version folder, '
                "so none is loaded; ModelCheckpoint(save_last=True) writes one",
                EmberWarning,
                stacklevel=4,
            )
            return None
        return max(existing, key=filesystem.modified_ns)
    return filesystem.normalize(ckpt_path)


def _last_candidates(callback: Any) -> list[str]:
    found = [filesystem.normalize(p) for p in (getattr(callback, "last_model_path", ""),) if p]
    on_exception = getattr(type(callback), "ckpt_path", None)
    if isinstance(on_exception, property):
        found.append(filesystem.normalize(callback.ckpt_path))
    dirpath, name = getattr(callback, "dirpath", None), getattr(callback, "CHECKPOINT_NAME_LAST", None)
    if dirpath and name:
        extension = getattr(callback, "FILE_EXTENSION", ".ckpt")
        pattern = re.compile(rf"^{re.escape(name)}(-v?\d+)?{re.escape(extension)}$")
        found += [filesystem.join(dirpath, entry) for entry in filesystem.listdir(dirpath) if pattern.match(entry)]
    return found


# ------------------------------------------------------------------- restore
def restore_modules_and_callbacks(trainer: Trainer, checkpoint: dict[str, Any]) -> None:
    """Lightning's order: the module's on_load_checkpoint, its weights, the DataModule, the callbacks.

    Callbacks get their on_load_checkpoint first, then ``load_state_dict``
    with a copy of their own entry; entries no callback claims are listed in
    one warning.
    """
    module = trainer.lightning_module
    assert module is not None
    trainer._fx = "on_load_checkpoint"
    module.on_load_checkpoint(checkpoint)
    if "state_dict" in checkpoint:  # else a distributed checkpoint's shards, read once the model is sharded
        load_model_state(module, checkpoint["state_dict"], getattr(module, "strict_loading", True), trainer.ckpt_path)
    datamodule = trainer.datamodule
    if datamodule is not None and type(datamodule).__qualname__ in checkpoint:
        datamodule.load_state_dict(checkpoint[type(datamodule).__qualname__])
    states = dict(checkpoint.get("callbacks") or {})
    keys = match_state_keys(trainer, states)
    known = {callback.state_key for callback in trainer.callbacks} | set(keys.values())
    unmatched = sorted(set(states) - known)
    if unmatched:
        warnings.warn(
            f"checkpoint {trainer.ckpt_path!r} holds state for callbacks this Trainer does not have: {unmatched}; "
            "pass the callbacks that wrote the checkpoint to the Trainer to restore them",
            EmberWarning,
            stacklevel=2,
        )
    caller = trainer.plugin_manager.hook.on_load_checkpoint
    if caller.get_hookimpls():
        caller(trainer=trainer, pl_module=module, checkpoint=checkpoint)
    trainer._fx = "load_state_dict"
    for name, _, function in trainer.plugin_manager.implementations("load_state_dict"):
        key = keys.get(name, "")
        if key in states:
            function(copy.deepcopy(states[key]))
    saved_loggers = checkpoint.get("loggers") or {}
    for key, logger in zip(logger_keys(trainer.loggers), trainer.loggers):
        if key in saved_loggers and callable(getattr(logger, "load_state_dict", None)):
            logger.load_state_dict(saved_loggers[key])


def match_state_keys(trainer: Trainer, states: dict[str, Any]) -> dict[str, str]:
    """The saved entry each stateful plugin restores from, by plugin name.

    A plugin's own state key first. A Callback whose key is not in the
    checkpoint falls back to the one entry of its class, when it is the only
    callback of that class: the checkpoint was written before the class's
    state_key named its settings, or with other settings (a longer
    ``max_time``), and that state should not be lost.
    """
    keys: dict[str, str] = {}
    plugins = [(name, plugin) for name, plugin, _ in trainer.plugin_manager.implementations("load_state_dict")]
    classes = [type(plugin).__qualname__ for _, plugin in plugins if isinstance(plugin, Callback)]
    claimed = {state_key_of(plugin, name) for name, plugin in plugins}
    for name, plugin in plugins:
        key = state_key_of(plugin, name)
        if key not in states and isinstance(plugin, Callback) and classes.count(type(plugin).__qualname__) == 1:
            label = type(plugin).__qualname__
            same_class = [k for k in states if (k == label or k.startswith(label + "{")) and k not in claimed]
            key = same_class[0] if len(same_class) == 1 else key
        keys[name] = key
    return keys


def check_resumable(checkpoint: dict[str, Any], path: Any) -> None:
    """Fit needs the training state, which a ``weights_only=True`` checkpoint does not hold."""
    if "optimizer_states" not in checkpoint:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was saved with weights_only=True and cannot resume training (it has no "
            "optimizer states); load its weights with Module.load_from_checkpoint and start a new fit instead"
        )


def restore_training_state(trainer: Trainer, checkpoint: dict[str, Any]) -> None:
    """Optimizers, schedulers, the precision scaler, the loop progress and the random state at the save."""
    path = trainer.ckpt_path
    for what, saved, live in (
        ("optimizer", checkpoint["optimizer_states"], trainer.optimizers),
        ("learning-rate scheduler", checkpoint.get("lr_schedulers", []), trainer.lr_scheduler_configs),
    ):
        if len(saved) != len(live):
            raise CheckpointError(
                f"checkpoint {path!r} holds {len(saved)} {what} state(s), but configure_optimizers() returned "
                f"{len(live)}; resume with the configuration that wrote the checkpoint"
            )
    if "state_dict" not in checkpoint:  # a distributed checkpoint read for a sharded model
        from ember.core.distributed_checkpoint import load_sharded_optimizers

        load_sharded_optimizers(trainer, checkpoint)
    for optimizer, state in zip(trainer.optimizers, checkpoint["optimizer_states"]):
        if state:
            trainer.strategy.load_optimizer_state(optimizer, state)
    for config, state in zip(trainer.lr_scheduler_configs, checkpoint.get("lr_schedulers", [])):
        config.scheduler.load_state_dict(state)
    trainer._precision.load_state_dict(checkpoint.get("precision") or {})
    saved = dict(checkpoint.get("loops", {}).get("fit_loop", {}))
    progress = trainer.fit_progress
    progress.resume_rng = saved.pop("rng", None) or {}
    metrics = saved.pop("metrics", None)
    progress.load_state_dict(saved)
    if progress.cut is not None:  # max_steps ended that epoch early: continue it at the next batch
        progress.load_state_dict({**progress.cut, "epoch_done": False, "cut": None})
    elif progress.epoch_done:
        progress.epoch += 1
        progress.batches_in_epoch = 0
        progress.epoch_done = False
        progress.epoch_rng = None
    if metrics is not None:  # the epoch's values so far count only if the resumed fit continues that epoch
        trainer._metrics.load_state_dict(metrics, trainer.strategy.root_device, progress.epoch == saved.get("epoch"))
    max_epochs = trainer.max_epochs
    if max_epochs is not None and 0 <= max_epochs < progress.epoch:
        raise MisconfigurationError(
            f"checkpoint {path!r} resumes at epoch {progress.epoch}, but Trainer(max_epochs={max_epochs}) ends "
            f"before it; pass max_epochs={progress.epoch} or more to resume from this checkpoint"
        )


def load_model_state(module: torch.nn.Module, state: dict[str, Any], strict: bool, path: Any) -> None:
    """``module.load_state_dict`` with an error listing missing and unexpected keys."""
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
    """Build ``cls`` from a checkpoint's hyperparameters (overridden by ``overrides``) and load its weights.

    Hyperparameters ``cls.__init__`` does not take are left out, unless it takes ``**kwargs``.
    """
    checkpoint = load_checkpoint_file(path, map_location=map_location or "cpu", weights_only=weights_only)
    hparams = {**checkpoint.get("hyper_parameters", {}), **overrides}
    parameters = inspect.signature(cls.__init__).parameters.values()
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        names = {p.name for p in parameters}
        hparams = {key: value for key, value in hparams.items() if key in names}
    module = cls(**hparams)
    module.on_load_checkpoint(checkpoint)
    state = checkpoint["state_dict"]
    load_model_state(module, state, strict=strict, path=path)
    device = next((value.device for value in state.values() if isinstance(value, torch.Tensor)), None)
    return module.to(device) if device is not None else module
