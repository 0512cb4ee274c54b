"""Callbacks log through ``self.log``/``self.log_dict``, which are the module's while the callback is attached."""

from __future__ import annotations

import pytest

import ember
from ember.callbacks import EarlyStopping


class LogsLearningRate(ember.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.log("lr", trainer.optimizers[0].param_groups[0]["lr"], prog_bar=True)

    def on_train_epoch_end(self, trainer, pl_module):
        self.log_dict({"epoch_marker": float(trainer.current_epoch), "twice": 2.0 * trainer.current_epoch})


def test_a_callback_logs_with_self_log(trainer_factory, tiny_model) -> None:
    trainer = trainer_factory(callbacks=[LogsLearningRate()], max_epochs=2, limit_train_batches=2)
    trainer.fit(tiny_model)
    assert float(trainer.callback_metrics["lr"]) == pytest.approx(0.05)
    assert trainer.progress_bar_metrics["lr"] == pytest.approx(0.05)
    assert float(trainer.callback_metrics["epoch_marker"]) == 1.0
    assert float(trainer.callback_metrics["twice"]) == 2.0


def test_a_metric_a_callback_logs_can_be_monitored(trainer_factory, tiny_model) -> None:
    class Countdown(ember.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            self.log("countdown", 10.0 - min(trainer.current_epoch, 2))

    stopping = EarlyStopping(monitor="countdown", patience=1, check_on_train_epoch_end=True)
    trainer = trainer_factory(callbacks=[Countdown(), stopping], max_epochs=10, limit_train_batches=1)
    trainer.fit(tiny_model)
    assert trainer.current_epoch == 4  # improved until epoch 2, patience of one more epoch


def test_a_callback_with_its_own_log_method_keeps_it(trainer_factory, tiny_model) -> None:
    class Diary(ember.Callback):
        def __init__(self):
            self.entries = []

        def log(self, entry):
            self.entries.append(entry)

        def on_fit_end(self, trainer, pl_module):
            self.log("done")

    diary = Diary()
    trainer_factory(callbacks=[diary], max_epochs=1, limit_train_batches=1).fit(tiny_model)
    assert diary.entries == ["done"]
