"""trainer.callback_metrics: the live mapping monitors read, as in Lightning."""

from __future__ import annotations

from pathlib import Path

import torch

import ember
from ember.callbacks import EarlyStopping, ModelCheckpoint
from ember.testing import TinyModel, make_trainer


class AddsScore(ember.Callback):
    """Computes a metric of its own after each validation and puts it into trainer.callback_metrics."""

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores

    def on_validation_epoch_end(self, trainer: ember.Trainer, pl_module: ember.Module) -> None:
        if not trainer.sanity_checking:
            trainer.callback_metrics["score"] = torch.tensor(self.scores[trainer.current_epoch])


def test_a_metric_a_callback_writes_is_what_early_stopping_monitors(tmp_path: Path) -> None:
    stopper = EarlyStopping(monitor="score", mode="max", patience=1)
    trainer = make_trainer(tmp_path, max_epochs=10, limit_train_batches=2, callbacks=[AddsScore([1, 2, 2, 3]), stopper])
    trainer.fit(TinyModel())
    assert stopper.stopped_epoch == 2
    assert trainer.callback_metrics["score"].item() == 2


def test_a_metric_a_callback_writes_is_what_model_checkpoint_ranks_by(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpts", monitor="score", mode="max", filename="{epoch}")
    trainer = make_trainer(tmp_path, max_epochs=3, limit_train_batches=2, callbacks=[AddsScore([1, 5, 2]), checkpoint])
    trainer.fit(TinyModel())
    assert Path(checkpoint.best_model_path).name == "epoch=1.ckpt"
    assert checkpoint.best_model_score.item() == 5


def test_callback_metrics_is_one_mapping_between_reads(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, max_epochs=1, limit_train_batches=2)
    trainer.fit(TinyModel())
    trainer.callback_metrics["note"] = torch.tensor(1.0)
    assert trainer.callback_metrics["note"].item() == 1.0
    assert "val_loss" in trainer.callback_metrics
