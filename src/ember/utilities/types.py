"""Type names Lightning code annotates with: ``STEP_OUTPUT``, ``OptimizerLRScheduler``, ``LRSchedulerConfig`` ..."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
from torch.utils.data import DataLoader

from ember.core.optimizers import LRSchedulerConfig

__all__ = [
    "EVAL_DATALOADERS",
    "LRSchedulerConfig",
    "LRSchedulerPLType",
    "LRSchedulerTypeUnion",
    "OptimizerLRScheduler",
    "STEP_OUTPUT",
    "TRAIN_DATALOADERS",
]

#: What a step may return: a loss tensor, a dict with a "loss" key, or None.
STEP_OUTPUT = torch.Tensor | Mapping[str, Any] | None
LRSchedulerTypeUnion = LRScheduler | ReduceLROnPlateau
LRSchedulerPLType = LRSchedulerTypeUnion
#: What ``configure_optimizers`` may return (see docs/module.md).
OptimizerLRScheduler = (
    Optimizer
    | Sequence[Optimizer]
    | tuple[Sequence[Optimizer], Sequence[LRSchedulerTypeUnion | Mapping[str, Any]]]
    | Mapping[str, Any]
    | Sequence[Mapping[str, Any]]
    | None
)
TRAIN_DATALOADERS = Any
EVAL_DATALOADERS = DataLoader[Any] | Sequence[DataLoader[Any]]
