"""Resuming fit from a checkpoint: the same run as an uninterrupted one, callback state by state_key, hook order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import ember


class Indexed(Dataset):
    """Random regression samples that also return their index, so a test can see the batch order."""

    def __init__(self, samples: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(samples, 8, generator=generator)
        self.y = self.x.sum(dim=1, keepdim=True)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.x[index], self.y[index], index


class DropoutModel(ember.Module):
    """Dropout, a shuffled loader, Adam and a per-step scheduler: every source of randomness and state."""

    def __init__(self, lr: float = 0.01, generator_seed: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(16, 1)
        )
        self.seen: list[tuple[int, int, list[int]]] = []
        self.epoch_starts: list[int] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, index = batch
        self.seen.append((self.current_epoch, batch_idx, index.tolist()))
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y, _ = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def on_train_epoch_start(self) -> None:
        self.epoch_starts.append(self.current_epoch)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.9)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def train_dataloader(self) -> DataLoader:
        seed = self.hparams.generator_seed
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        return DataLoader(Indexed(48, seed=0), batch_size=6, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(Indexed(12, seed=1), batch_size=6)


class Interrupted(Exception):
    """Stands for the crash: the fault-tolerance tests kill a real process instead."""


class SaveThenStop(ember.Callback):
    """Saves a checkpoint the first time ``hook`` runs at ``step``, and stops the run ``later`` steps after it."""

    def __init__(self, path: Path, hook: str, step: int, later: int = 3) -> None:
        self.path, self.hook, self.step, self.later = path, hook, step, later
        self.saved_at: int | None = None

    def _maybe_save(self, trainer: ember.Trainer, hook: str) -> None:
        if hook == self.hook and self.saved_at is None and trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)
            self.saved_at = trainer.global_step

    def on_train_batch_start(self, trainer: ember.Trainer, *args: Any) -> None:
        self._maybe_save(trainer, "on_train_batch_start")

    def on_validation_end(self, trainer: ember.Trainer, *args: Any) -> None:
        self._maybe_save(trainer, "on_validation_end")

    def on_train_epoch_end(self, trainer: ember.Trainer, *args: Any) -> None:
        self._maybe_save(trainer, "on_train_epoch_end")

    def on_train_batch_end(self, trainer: ember.Trainer, *args: Any) -> None:
        self._maybe_save(trainer, "on_train_batch_end")
        if self.saved_at is not None and trainer.global_step >= self.saved_at + self.later:
            raise Interrupted


def make(root: Path, callbacks: Any = (), seed: int = 7, generator_seed: int | None = None, **flags: Any) -> Any:
    """A seeded DropoutModel and a quiet Trainer: 3 epochs of 8 batches, validation twice an epoch."""
    ember.seed_everything(seed)
    model = DropoutModel(generator_seed=generator_seed)
    options = {"max_epochs": 3, "val_check_interval": 0.5, "enable_progress_bar": False, **flags}
    options.update(enable_model_summary=False, enable_checkpointing=False, logger=False, default_root_dir=root)
    return ember.Trainer(callbacks=list(callbacks), **options), model


def fit(root: Path, callbacks: Any = (), seed: int = 7, ckpt_path: Any = None, **flags: Any) -> Any:
    trainer, model = make(root, callbacks, seed, **flags)
    trainer.fit(model, ckpt_path=ckpt_path)
    return trainer, model


def crash(root: Path, hook: str, step: int, **flags: Any) -> tuple[Path, DropoutModel]:
    """Train until ``later`` steps after a checkpoint saved in ``hook`` at ``step``; return its path and the model."""
    path = root / "run.ckpt"
    trainer, model = make(root, [SaveThenStop(path, hook, step)], **flags)
    with pytest.raises(Interrupted):
        trainer.fit(model)
    return path, model


def assert_bitwise_equal(a: Any, b: Any, where: str = "state") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_bitwise_equal(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b)):
            assert_bitwise_equal(x, y, f"{where}[{index}]")
    else:
        assert a == b, where


def assert_same_run(full: tuple[Any, Any], resumed: tuple[Any, Any]) -> None:
    (full_trainer, full_model), (trainer, model) = full, resumed
    assert_bitwise_equal(full_model.state_dict(), model.state_dict(), "model")
    assert_bitwise_equal(full_trainer.optimizers[0].state_dict(), trainer.optimizers[0].state_dict(), "optimizer")
    scheduler, full_scheduler = (
        trainer.lr_scheduler_configs[0].scheduler,
        full_trainer.lr_scheduler_configs[0].scheduler,
    )
    assert_bitwise_equal(full_scheduler.state_dict(), scheduler.state_dict(), "scheduler")
    assert (trainer.global_step, trainer.current_epoch) == (full_trainer.global_step, full_trainer.current_epoch)


# 8 batches an epoch, validation after the 4th and the 8th; steps count from 1, all in the second epoch.
SAVE_POINTS = {
    "mid-epoch batch end": ("on_train_batch_end", 10),
    "batch end before validation": ("on_train_batch_end", 12),
    "validation end inside the epoch": ("on_validation_end", 12),
    "last batch end of an epoch": ("on_train_batch_end", 16),
    "train epoch end": ("on_train_epoch_end", 16),
    "batch start": ("on_train_batch_start", 10),
}


@pytest.mark.parametrize("point", SAVE_POINTS)
def test_resumed_run_ends_bitwise_equal_to_an_uninterrupted_one(tmp_path: Path, point: str) -> None:
    full = fit(tmp_path / "full")
    path, _ = crash(tmp_path / "crash", *SAVE_POINTS[point])
    resumed = fit(tmp_path / "resume", seed=1234, ckpt_path=path)
    assert_same_run(full, resumed)


@pytest.mark.parametrize("point", SAVE_POINTS)
def test_resumed_epoch_sees_exactly_the_remaining_batches_without_a_new_epoch_start(tmp_path: Path, point: str) -> None:
    hook, step = SAVE_POINTS[point]
    _, full = fit(tmp_path / "full")
    path, crashed = crash(tmp_path / "crash", hook, step)
    _, resumed = fit(tmp_path / "resume", seed=99, ckpt_path=path)
    assert crashed.seen[:step] + resumed.seen == full.seen
    assert resumed.epoch_starts == [2]
    assert full.epoch_starts == [0, 1, 2]


def test_a_loader_with_its_own_generator_resumes_its_order_in_a_later_epoch(tmp_path: Path) -> None:
    full = fit(tmp_path / "full", generator_seed=5)
    path, crashed = crash(tmp_path / "crash", "on_train_batch_end", 19, generator_seed=5)
    resumed = fit(tmp_path / "resume", seed=3, ckpt_path=path, generator_seed=5)
    assert crashed.seen[:19] + resumed[1].seen == full[1].seen
    assert_same_run(full, resumed)
