"""Seeding and random-number state: ``seed_everything`` and the RNG snapshots checkpoints carry."""

from __future__ import annotations

import os
import random
import sys
from typing import Any

import torch

_MAX_SEED = 2**32 - 1


def seed_everything(seed: int | None = None, workers: bool = False) -> int:
    """Seed Python's ``random``, NumPy (if installed) and torch; return the seed used.

    :param seed: the seed; read from ``PL_GLOBAL_SEED``/``EMBER_GLOBAL_SEED`` or 0 when None.
    :param workers: derive a distinct, reproducible seed for every dataloader worker.
    """
    if seed is None:
        env = os.environ.get("EMBER_GLOBAL_SEED", os.environ.get("PL_GLOBAL_SEED"))
        seed = int(env) if env is not None else 0
    if not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"seed_everything({seed!r}): the seed must be an int between 0 and {_MAX_SEED}")
    os.environ["EMBER_GLOBAL_SEED"] = str(seed)
    os.environ["EMBER_SEED_WORKERS"] = str(int(workers))
    random.seed(seed)
    torch.manual_seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed)
    return seed


def worker_init_function(worker_id: int, rank: int = 0) -> None:
    """Seed a dataloader worker from torch's per-worker seed, so augmentations differ and repeat."""
    seed = torch.initial_seed() % _MAX_SEED
    random.seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed)


def capture_rng() -> dict[str, Any]:
    """The state of every random generator a training step may draw from."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": _python_state()}
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        kind, keys, pos, has_gauss, cached = numpy.random.get_state()
        state["numpy"] = [kind, torch.from_numpy(keys.astype("int64")), pos, has_gauss, cached]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng` returned."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = sys.modules.get("numpy")
    if numpy is not None and "numpy" in state:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        numpy.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]
