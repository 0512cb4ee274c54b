"""Seeding under Lightning's module path: ``seed_everything``, ``reset_seed`` and ``isolate_rng``."""

from __future__ import annotations

import os
from collections.abc import Generator
from contextlib import contextmanager

from ember.core.seed import capture_rng, restore_rng, seed_everything

__all__ = ["isolate_rng", "reset_seed", "seed_everything"]


def reset_seed() -> None:
    """Seed again with what the last ``seed_everything`` used; nothing when it was never called."""
    seed = os.environ.get("EMBER_GLOBAL_SEED")
    if seed is not None:
        seed_everything(int(seed), workers=os.environ.get("EMBER_SEED_WORKERS") == "1")


@contextmanager
def isolate_rng(include_cuda: bool = True) -> Generator[None, None, None]:
    """Run the block, then put back the random state of Python, NumPy and torch as it was before it."""
    state = capture_rng()
    if not include_cuda:
        state.pop("cuda", None)
    try:
        yield
    finally:
        restore_rng(state)
