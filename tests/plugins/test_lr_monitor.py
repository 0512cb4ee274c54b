"""LearningRateMonitor: Lightning's key names and logging steps, read back from a CSVLogger's metrics.csv.

The expected steps and values were recorded from Lightning 2.6 running the
same schedules: 2 epochs of 4 batches, log_every_n_steps=1, lr 0.1, gamma 0.5.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from ember.callbacks import LambdaCallback, LearningRateMonitor
from ember.errors import EmberWarning, MisconfigurationError
from ember.loggers import CSVLogger
from ember.testing import TinyModel


class Scheduled(TinyModel):
    """TinyModel with a StepLR (gamma 0.5) stepped every ``interval``, or none; ``groups=2`` splits weight and bias."""

    def __init__(self, interval=None, name=None, groups=1, optimizer="sgd", group_names=()) -> None:
        super().__init__()
        self.interval, self.name, self.groups, self.optimizer, self.group_names = (
            interval,
            name,
            groups,
            optimizer,
            group_names,
        )

    def configure_optimizers(self):
        params = self.parameters()
        if self.groups == 2:
            params = [{"params": [self.layer.weight]}, {"params": [self.layer.bias], "lr": 0.5}]
            for group, name in zip(params, self.group_names):
                group["name"] = name
        if self.optimizer == "sgd":
            optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.01)
        elif self.optimizer == "adam":
            optimizer = torch.optim.Adam(params, lr=0.1)
        else:
            optimizer = torch.optim.Adagrad(params, lr=0.1)
        if self.interval is None:
            return optimizer
        scheduler = {"scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1, 0.5), "interval": self.interval}
        if self.name:
            scheduler["name"] = self.name
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def fit(trainer_factory, monitor, model, also=(), **overrides):
    options = {"max_epochs": 2, "limit_train_batches": 4, "limit_val_batches": 0, "log_every_n_steps": 1}
    trainer = trainer_factory(callbacks=[monitor, *also], **{**options, **overrides})
    trainer.logger = CSVLogger(trainer.default_root_dir)  # these tests read metrics.csv
    trainer.fit(model)
    return trainer


def logged(trainer, key: str) -> list[tuple[int, float]]:
    """``(step, value)`` of every metrics.csv row holding ``key``."""
    with open(Path(trainer.log_dir) / "metrics.csv", newline="") as handle:
        return [(int(row["step"]), float(row[key])) for row in csv.DictReader(handle) if row.get(key)]


STEPS_8 = [(step, 0.1) for step in range(8)]


def test_without_a_scheduler_logs_at_each_epoch_start_and_each_step(trainer_factory) -> None:
    trainer = fit(trainer_factory, LearningRateMonitor(), Scheduled())
    assert logged(trainer, "lr-SGD") == [(0, 0.1), (0, 0.1), (1, 0.1), (2, 0.1), (3, 0.1), (4, 0.1), (4, 0.1)] + [
        (5, 0.1),
        (6, 0.1),
        (7, 0.1),
    ]


def test_a_step_scheduler_is_logged_every_step(trainer_factory) -> None:
    trainer = fit(trainer_factory, LearningRateMonitor(), Scheduled("step"))
    assert logged(trainer, "lr-SGD") == [(step, 0.1 * 0.5**step) for step in range(8)]


def test_an_epoch_scheduler_is_logged_every_epoch(trainer_factory) -> None:
    trainer = fit(trainer_factory, LearningRateMonitor(), Scheduled("epoch"))
    assert logged(trainer, "lr-SGD") == [(0, 0.1), (4, 0.05)]


def test_the_scheduler_configs_name_is_the_key(trainer_factory) -> None:
    trainer = fit(trainer_factory, LearningRateMonitor(), Scheduled("epoch", name="my_lr"))
    assert logged(trainer, "my_lr") == [(0, 0.1), (4, 0.05)]


def test_logging_interval_step_logs_an_epoch_scheduler_every_step(trainer_factory) -> None:
    trainer = fit(trainer_factory, LearningRateMonitor(logging_interval="step"), Scheduled("epoch"))
    assert logged(trainer, "lr-SGD") == [(s, 0.1) for s in range(4)] + [(s, 0.05) for s in range(4, 8)]


def test_logging_interval_epoch_logs_a_step_scheduler_every_epoch(trainer_factory) -> None:
    trainer = fit(trainer_factory, LearningRateMonitor(logging_interval="epoch"), Scheduled("step"))
    assert logged(trainer, "lr-SGD") == [(0, 0.1), (4, 0.1 * 0.5**4)]


def test_steps_follow_log_every_n_steps(trainer_factory) -> None:
    trainer = fit(trainer_factory, LearningRateMonitor(logging_interval="step"), Scheduled(), log_every_n_steps=2)
    assert [step for step, _ in logged(trainer, "lr-SGD")] == [1, 3, 5, 7]


def test_param_groups_momentum_and_weight_decay(trainer_factory) -> None:
    monitor = LearningRateMonitor(logging_interval="epoch", log_momentum=True, log_weight_decay=True)
    trainer = fit(trainer_factory, monitor, Scheduled(groups=2), max_epochs=1)
    expected = {
        "lr-SGD/pg1": 0.1,
        "lr-SGD/pg1-momentum": 0.9,
        "lr-SGD/pg1-weight_decay": 0.01,
        "lr-SGD/pg2": 0.5,
        "lr-SGD/pg2-momentum": 0.9,
        "lr-SGD/pg2-weight_decay": 0.01,
    }
    for key, value in expected.items():
        assert logged(trainer, key) == [(0, value)]
    assert monitor.lrs == {"lr-SGD/pg1": [0.1], "lr-SGD/pg2": [0.5]}
    assert monitor.last_momentum_values == {"lr-SGD/pg1-momentum": 0.9, "lr-SGD/pg2-momentum": 0.9}


def test_named_param_groups(trainer_factory) -> None:
    trainer = fit(
        trainer_factory, LearningRateMonitor("epoch"), Scheduled(groups=2, group_names=("body", "head")), max_epochs=1
    )
    assert logged(trainer, "lr-SGD/body") == [(0, 0.1)]
    assert logged(trainer, "lr-SGD/head") == [(0, 0.5)]


def test_param_groups_sharing_a_name_are_an_error(trainer_factory) -> None:
    with pytest.raises(MisconfigurationError, match=r"lr-SGD: several parameter groups share the name\(s\) \['x'\]"):
        fit(trainer_factory, LearningRateMonitor(), Scheduled(groups=2, group_names=("x", "x")))


def test_adam_momentum_is_its_first_beta(trainer_factory) -> None:
    monitor = LearningRateMonitor(logging_interval="epoch", log_momentum=True)
    trainer = fit(trainer_factory, monitor, Scheduled(optimizer="adam"), max_epochs=1)
    assert logged(trainer, "lr-Adam") == [(0, 0.1)]
    assert logged(trainer, "lr-Adam-momentum") == [(0, 0.9)]


def test_an_optimizer_without_momentum_warns_and_logs_zero(trainer_factory) -> None:
    monitor = LearningRateMonitor(logging_interval="epoch", log_momentum=True)
    with pytest.warns(EmberWarning, match="some optimizers have no momentum"):
        trainer = fit(trainer_factory, monitor, Scheduled(optimizer="adagrad"), max_epochs=1)
    assert logged(trainer, "lr-Adagrad-momentum") == [(0, 0.0)]


def test_two_optimizers_of_one_type_are_numbered(trainer_factory) -> None:
    class TwoOptimizers(TinyModel):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False
            self.other = torch.nn.Linear(32, 2)

        def training_step(self, batch, batch_idx):
            for optimizer in self.optimizers():
                optimizer.zero_grad()
            loss = self._loss(batch) + self.other(batch[0]).pow(2).mean()
            self.manual_backward(loss)
            for optimizer in self.optimizers():
                optimizer.step()

        def configure_optimizers(self):
            return [torch.optim.SGD(self.layer.parameters(), lr=0.1), torch.optim.SGD(self.other.parameters(), lr=0.2)]

    trainer = fit(trainer_factory, LearningRateMonitor("epoch"), TwoOptimizers(), max_epochs=1)
    assert logged(trainer, "lr-SGD") == [(0, 0.1)]
    assert logged(trainer, "lr-SGD-1") == [(0, 0.2)]


def test_values_are_in_callback_metrics_for_monitors(trainer_factory) -> None:
    seen = []
    read = LambdaCallback(on_train_epoch_end=lambda trainer, *_: seen.append(float(trainer.callback_metrics["lr-SGD"])))
    fit(trainer_factory, LearningRateMonitor(), Scheduled("epoch"), also=[read])
    assert seen == [pytest.approx(0.1), pytest.approx(0.05)]


def test_a_trainer_without_a_logger_is_an_error(trainer_factory) -> None:
    trainer = trainer_factory(logger=False, callbacks=[LearningRateMonitor()])
    with pytest.raises(MisconfigurationError, match="LearningRateMonitor needs a logger"):
        trainer.fit(Scheduled())


def test_a_bad_logging_interval_is_an_error_naming_it() -> None:
    with pytest.raises(
        MisconfigurationError, match=r"logging_interval='batch'\): accepted are 'step', 'epoch' and None"
    ):
        LearningRateMonitor(logging_interval="batch")
