"""A tiny model and datamodule for tests: Linear regression on fixed random data, seconds to train."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from ember.core.datamodule import DataModule
from ember.core.module import Module
from ember.core.trainer import Trainer


def regression_data(samples: int = 64, features: int = 32, outputs: int = 2, seed: int = 0) -> TensorDataset:
    """``samples`` points of y = x @ w for a fixed random w, the same for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, features, generator=generator)
    weight = torch.randn(features, outputs, generator=generator)
    return TensorDataset(x, x @ weight)


class TinyDataModule(DataModule):
    """64 training, 32 validation, 32 test and 32 predict samples, batches of ``batch_size``."""

    def __init__(self, batch_size: int = 8, features: int = 32) -> None:
        super().__init__()
        self.batch_size, self.features = batch_size, features

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(regression_data(64, self.features, seed=0), batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(regression_data(32, self.features, seed=1), batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader[Any]:
        return DataLoader(regression_data(32, self.features, seed=2), batch_size=self.batch_size)

    def predict_dataloader(self) -> DataLoader[Any]:
        return DataLoader(regression_data(32, self.features, seed=3), batch_size=self.batch_size)


class TinyModel(Module):
    """``Linear(features, 2)`` trained by MSE; logs ``train_loss``, ``val_loss`` and ``test_loss``.

    It serves its own :class:`TinyDataModule` data, so ``trainer.fit(TinyModel())`` works as is.
    """

    def __init__(self, features: int = 32, lr: float = 0.05, batch_size: int = 8) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(features, 2)
        self._data = TinyDataModule(batch_size, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)  # type: ignore[no-any-return]

    def _loss(self, batch: Any) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.log("test_loss", self._loss(batch))

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self(batch[0])  # type: ignore[no-any-return]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    def train_dataloader(self) -> DataLoader[Any]:
        return self._data.train_dataloader()

    def val_dataloader(self) -> DataLoader[Any]:
        return self._data.val_dataloader()

    def test_dataloader(self) -> DataLoader[Any]:
        return self._data.test_dataloader()

    def predict_dataloader(self) -> DataLoader[Any]:
        return self._data.predict_dataloader()


def make_trainer(root: str | Path, **overrides: Any) -> Trainer:
    """A Trainer for tests: two epochs, no progress bar, summary or checkpointing, logs under ``root``.

    Keywords override these defaults. A checkpoint, progress bar or summary
    callback in ``callbacks`` turns its flag back on, so passing one just works.
    """
    from ember.core.discovery import replaced_defaults

    options: dict[str, Any] = {
        "max_epochs": 2,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "logger": False,
        "default_root_dir": str(root),
    }
    callbacks = overrides.get("callbacks")
    if callbacks is not None:
        for flag in replaced_defaults(list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]):
            del options[flag]
    options.update(overrides)
    return Trainer(**options)
