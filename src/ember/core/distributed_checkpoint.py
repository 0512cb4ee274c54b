"""Distributed checkpoints: a folder every rank writes its shards into, with torch.distributed.checkpoint (DCP).

Under a sharded strategy no rank holds the whole model, so a checkpoint is a
folder: DCP's ``.metadata`` and one ``.distcp`` file per rank hold the model
weights and optimizer states (keyed by parameter name, so any number of ranks
can load them), and ``ember_meta.pt``, written by rank 0 with ``torch.save``,
holds everything else an ember checkpoint holds (loop progress, random state,
callback and logger states, hyperparameters). The folder is written under a
temporary name and renamed into place, so a save killed halfway leaves the
previous checkpoint whole.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import tempfile
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ember.errors import CheckpointError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer

META = "ember_meta.pt"
#: The entries DCP writes as shards; everything else goes to META.
SHARDED = ("state_dict", "optimizer_states")


def is_distributed_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder written by :func:`save_distributed`."""
    folder = Path(path)
    return folder.is_dir() and (folder / ".metadata").is_file() and (folder / META).is_file()


# ------------------------------------------------------------------- saving
def save_distributed(trainer: Trainer, checkpoint: dict[str, Any], filepath: str | os.PathLike[str]) -> None:
    """Every rank writes its shards of ``checkpoint`` into a temporary folder; rank 0 renames it to ``filepath``."""
    import torch.distributed.checkpoint as dcp

    from ember.core.checkpoint import atomic_save

    strategy = trainer.strategy
    target = Path(filepath).absolute()
    temporary = Path(strategy.broadcast(str(target.with_name(f"{_prefix(target, 'tmp')}{os.getpid()}"))))
    if strategy.is_global_zero:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(temporary, ignore_errors=True)
    strategy.barrier("save_distributed")
    optimizers = checkpoint.get("optimizer_states")
    sharded: dict[str, Any] = {"state_dict": checkpoint["state_dict"]}
    if optimizers is not None:
        sharded["optimizer_states"] = {str(index): state for index, state in enumerate(optimizers)}
    dcp.save(sharded, checkpoint_id=str(temporary))
    if strategy.is_global_zero:
        meta = {key: value for key, value in checkpoint.items() if key not in SHARDED}
        meta["distributed_checkpoint"] = {
            "world_size": strategy.world_size,
            "optimizers": None if optimizers is None else len(optimizers),
        }
        atomic_save(meta, temporary / META)
        _commit(temporary, target)
    strategy.barrier("save_distributed")


def _prefix(path: Path, kind: str) -> str:
    return f".{path.name}.{kind}-{socket.gethostname()}-"


def _commit(temporary: Path, target: Path) -> None:
    """Rename ``temporary`` to ``target``; an existing ``target`` is moved aside first and removed after."""
    from ember.core.checkpoint import _fsync_folder, _process_alive

    aside = None
    if os.path.lexists(target):  # a folder, a file (state_dict_type="full" before) or a link
        aside = target.with_name(f"{_prefix(target, 'old')}{os.getpid()}")
        _remove(aside)
        os.replace(target, aside)
    os.replace(temporary, target)
    _fsync_folder(target.parent)
    if aside is not None:
        _remove(aside)
    for kind in ("tmp", "old"):  # left by saves that were killed
        prefix = _prefix(target, kind)
        for leftover in target.parent.glob(f"{glob.escape(prefix)}*"):
            pid = leftover.name[len(prefix) :]
            if pid.isdigit() and not _process_alive(int(pid)):
                _remove(leftover)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink()


# ------------------------------------------------------------------ reading
def read_distributed(path: str | os.PathLike[str], weights_only: bool = True, full: bool = True) -> dict[str, Any]:
    """The checkpoint in folder ``path``.

    :param full: read the whole model and optimizer states into this process, numbered as an ordinary
        checkpoint numbers them; with False they stay on disk, for :func:`load_sharded_model` and
        :func:`load_sharded_optimizers` to read each rank's shards from once the model is sharded.
    """
    folder = Path(path)
    name = str(folder)
    try:
        meta = torch.load(folder / META, map_location="cpu", weights_only=weights_only)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise CheckpointError(f"distributed checkpoint {name!r} has an unreadable {META}: {error}") from None
    meta["distributed_checkpoint"] = {**meta.get("distributed_checkpoint", {}), "path": name}
    if not full:
        count = meta["distributed_checkpoint"].get("optimizers")
        if count is not None:
            meta["optimizer_states"] = [{} for _ in range(count)]  # read by load_sharded_optimizers
        return meta
    tensors = _read_whole(folder)
    meta["state_dict"] = tensors["state_dict"]
    optimizers = tensors.get("optimizer_states")
    if optimizers is not None:
        meta["optimizer_states"] = [numbered_optimizer_state(optimizers[str(i)]) for i in range(len(optimizers))]
    return meta


def _read_whole(folder: Path) -> dict[str, Any]:
    """Every shard of a DCP folder joined into whole tensors, in this process."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with tempfile.TemporaryDirectory(prefix="ember-dcp-") as scratch:
        whole = Path(scratch) / "whole.pt"
        dcp_to_torch_save(str(folder), str(whole))
        return torch.load(whole, map_location="cpu", weights_only=True)  # type: ignore[no-any-return]


def is_deferred(checkpoint: dict[str, Any]) -> bool:
    """Whether ``checkpoint`` was read with ``full=False``: its tensors are still in the folder."""
    return "distributed_checkpoint" in checkpoint and "state_dict" not in checkpoint


def load_sharded_model(trainer: Trainer, checkpoint: dict[str, Any]) -> None:
    """Read this rank's part of the saved weights into the (sharded) model, however many ranks saved them."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, set_model_state_dict

    module = trainer.lightning_module
    assert module is not None
    strict = getattr(module, "strict_loading", True)
    state = {"state_dict": get_model_state_dict(module)}
    dcp.load(state, checkpoint_id=checkpoint["distributed_checkpoint"]["path"])
    set_model_state_dict(module, state["state_dict"], options=StateDictOptions(strict=strict))


def load_sharded_optimizers(trainer: Trainer, checkpoint: dict[str, Any]) -> None:
    """Read this rank's part of the saved optimizer states into the optimizers."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict

    module = trainer.lightning_module
    assert module is not None
    states = {str(i): get_optimizer_state_dict(module, optimizer) for i, optimizer in enumerate(trainer.optimizers)}
    holder = {"optimizer_states": states}
    dcp.load(holder, checkpoint_id=checkpoint["distributed_checkpoint"]["path"])
    for index, optimizer in enumerate(trainer.optimizers):
        set_optimizer_state_dict(module, optimizer, holder["optimizer_states"][str(index)])


# ---------------------------------------------------- optimizer state keys
def numbered_optimizer_state(state: dict[str, Any]) -> dict[str, Any]:
    """A parameter-name-keyed optimizer state numbered as ``optimizer.state_dict()`` numbers it."""
    order = [name for group in state["param_groups"] for name in group["params"]]
    index = {name: number for number, name in enumerate(order)}
    return {
        "state": {index[name]: value for name, value in state.get("state", {}).items()},
        "param_groups": [{**group, "params": [index[n] for n in group["params"]]} for group in state["param_groups"]],
    }


def named_optimizer_state(
    state: dict[str, Any], module: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """An ordinary (numbered) optimizer state keyed by the names of ``optimizer``'s parameters in ``module``."""
    names = {id(parameter): name for name, parameter in module.named_parameters()}
    live = [names[id(p)] for p in chain.from_iterable(group["params"] for group in optimizer.param_groups)]
    return {
        "state": {live[number]: value for number, value in state.get("state", {}).items()},
        "param_groups": [{**group, "params": [live[i] for i in group["params"]]} for group in state["param_groups"]],
    }


# -------------------------------------------------------------- consolidate
def consolidate(source: str | os.PathLike[str], output: str | os.PathLike[str]) -> None:
    """Write distributed checkpoint ``source`` as one ordinary checkpoint file ``output`` (atomically)."""
    from ember.core.checkpoint import atomic_save

    if not is_distributed_checkpoint(source):
        raise CheckpointError(
            f"{str(source)!r} is not a distributed checkpoint (a folder with .metadata and {META}); "
            "ember writes one when a sharded strategy saves"
        )
    checkpoint = read_distributed(source, full=True)
    checkpoint.pop("distributed_checkpoint")
    atomic_save(checkpoint, output)
