"""Data helpers: ``suggested_max_num_workers`` for a DataLoader's ``num_workers``."""

from __future__ import annotations

import os

__all__ = ["suggested_max_num_workers"]


def suggested_max_num_workers(local_world_size: int) -> int:
    """The CPU cores this process may use, shared among ``local_world_size`` processes, one left for each main."""
    if not isinstance(local_world_size, int) or local_world_size < 1:
        raise ValueError(f"suggested_max_num_workers(local_world_size={local_world_size!r}); accepted is an int >= 1")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // local_world_size - 1)
