"""A model whose logged values come from its inputs only, so logger tests can assert exact numbers."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import ember


class CountingModel(ember.Module):
    """Trains (with lr 0) on 0..7 in batches of 2 and validates on 1000..1003 in batches of 2.

    Logged per training batch: ``a`` (on_step and on_epoch) = the batch's sum
    (1, 5, 9, 13; epoch mean 7), ``b`` (on_epoch only) = 10 x the sum (epoch
    mean 70). Per validation batch: ``val`` = the sum (2001, 2005; mean 2003)
    and, with ``val_step_metric``, ``vs`` on_step too. With
    ``epoch_end_metric``, ``on_train_epoch_end`` logs ``ee`` = epoch + 0.5.
    """

    def __init__(self, val_step_metric: bool = False, epoch_end_metric: bool = False) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.val_step_metric, self.epoch_end_metric = val_step_metric, epoch_end_metric
        self.example_input_array = torch.zeros(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)  # type: ignore[no-any-return]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (x,) = batch
        self.log("a", x.sum(), on_step=True, on_epoch=True)
        self.log("b", x.sum() * 10, on_step=False, on_epoch=True)
        return self(x).sum()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        (x,) = batch
        self.log("val", x.sum())
        if self.val_step_metric:
            self.log("vs", x.sum(), on_step=True)

    def on_train_epoch_end(self) -> None:
        if self.epoch_end_metric:
            self.log("ee", self.current_epoch + 0.5)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(torch.arange(8.0).reshape(8, 1)), batch_size=2)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(torch.arange(4.0).reshape(4, 1) + 1000), batch_size=2)


@pytest.fixture
def counting_model() -> type[CountingModel]:
    """The :class:`CountingModel` class; call it for a fresh model."""
    return CountingModel
