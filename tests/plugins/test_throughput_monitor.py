"""ThroughputMonitor: Lightning's keys and counts per stage, read back from metrics.csv; Throughput's arithmetic."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ember.callbacks import LambdaCallback, ThroughputMonitor
from ember.errors import EmberWarning
from ember.loggers import CSVLogger
from ember.plugins.throughput_monitor import Throughput
from ember.testing import TinyModel


class Counted(TinyModel):
    """TinyModel that says how many FLOPs a batch costs (a made-up number: the monitor only multiplies)."""

    flops_per_batch = 1000


def rows(trainer, prefix: str) -> list[dict[str, float]]:
    """The metrics.csv rows holding keys that start with ``prefix``, as numbers."""
    with open(Path(trainer.log_dir) / "metrics.csv", newline="") as handle:
        found = [{key: float(value) for key, value in row.items() if value} for row in csv.DictReader(handle)]
    return [row for row in found if any(key.startswith(prefix) for key in row)]


def batch_size(batch) -> int:
    return len(batch[0])


def trainer_for(trainer_factory, monitor, **overrides):
    options = dict(
        max_epochs=1, limit_train_batches=3, limit_val_batches=2, num_sanity_val_steps=0, log_every_n_steps=1
    )
    trainer = trainer_factory(callbacks=[monitor], **{**options, **overrides})
    trainer.logger = CSVLogger(trainer.default_root_dir)  # these tests read metrics.csv
    return trainer


def test_logs_training_throughput_at_every_step(trainer_factory) -> None:
    trainer = trainer_for(trainer_factory, ThroughputMonitor(batch_size, window_size=2))
    trainer.fit(Counted())
    train = rows(trainer, "train/")
    assert [row["step"] for row in train] == [0, 1, 2]
    assert [row["train/batches"] for row in train] == [1, 2, 3]
    assert [row["train/samples"] for row in train] == [8, 16, 24]
    assert all(row["epoch"] == 0 for row in train)
    assert "train/device/samples_per_sec" not in train[0]  # the window of two is not full yet
    for row in train[1:]:
        batches_per_sec = row["train/device/batches_per_sec"]
        assert batches_per_sec > 0
        assert row["train/device/samples_per_sec"] == pytest.approx(8 * batches_per_sec)
        assert row["train/device/flops_per_sec"] == pytest.approx(1000 * batches_per_sec)
        assert row["train/time"] > 0
    assert train[2]["train/time"] > train[1]["train/time"]
    assert not any(key.startswith("train/device/mfu") for row in train for key in row)  # no known peak FLOP/s


def test_logs_validation_throughput_with_a_running_batch_count(trainer_factory) -> None:
    trainer = trainer_for(trainer_factory, ThroughputMonitor(batch_size, window_size=2), max_epochs=2)
    trainer.fit(Counted())
    val = rows(trainer, "validate/")
    assert [row["step"] for row in val] == [1, 2, 3, 4]
    assert [row["validate/batches"] for row in val] == [1, 2, 1, 2]  # each validation run starts over
    assert "validate/device/samples_per_sec" in val[1]
    assert all("epoch" not in row for row in val)


def test_the_sanity_check_is_not_measured(trainer_factory) -> None:
    sanity = []
    trainer = trainer_factory(
        max_epochs=1,
        limit_train_batches=2,
        log_every_n_steps=1,
        check_val_every_n_epoch=2,  # no validation in this one epoch: only the sanity check validates
        callbacks=[ThroughputMonitor(batch_size), LambdaCallback(on_sanity_check_end=lambda *_: sanity.append(1))],
    )
    trainer.logger = CSVLogger(trainer.default_root_dir)  # these tests read metrics.csv
    trainer.fit(Counted())
    assert sanity == [1]
    assert rows(trainer, "validate/") == []


def test_length_fn_adds_items(trainer_factory) -> None:
    monitor = ThroughputMonitor(batch_size, length_fn=lambda batch: batch[0].numel(), window_size=2)
    trainer = trainer_for(trainer_factory, monitor)
    trainer.fit(Counted())
    train = rows(trainer, "train/")
    assert [row["train/lengths"] for row in train] == [8 * 32, 16 * 32, 24 * 32]
    assert train[2]["train/device/items_per_sec"] == pytest.approx(32 * train[2]["train/device/samples_per_sec"])


def test_a_model_without_flops_per_batch_warns_and_logs_no_flops(trainer_factory) -> None:
    trainer = trainer_for(trainer_factory, ThroughputMonitor(batch_size, window_size=2))
    with pytest.warns(EmberWarning, match="flops_per_batch"):
        trainer.fit(TinyModel())
    train = rows(trainer, "train/")
    assert "train/device/samples_per_sec" in train[-1]
    assert not any("flops" in key for row in train for key in row)


def test_logs_only_when_the_optimizer_steps(trainer_factory) -> None:
    monitor = ThroughputMonitor(batch_size, window_size=2)
    trainer = trainer_for(trainer_factory, monitor, limit_train_batches=4, accumulate_grad_batches=2)
    trainer.fit(Counted())
    train = rows(trainer, "train/")
    assert [(row["step"], row["train/batches"]) for row in train] == [(0, 2), (1, 4)]


def test_follows_log_every_n_steps(trainer_factory) -> None:
    trainer = trainer_for(trainer_factory, ThroughputMonitor(batch_size), limit_train_batches=4, log_every_n_steps=2)
    trainer.fit(Counted())
    assert [row["step"] for row in rows(trainer, "train/")] == [1, 3]


def test_test_and_predict_runs_add_up(trainer_factory) -> None:
    trainer = trainer_factory(
        log_every_n_steps=1,
        limit_test_batches=2,
        limit_predict_batches=3,
        callbacks=[ThroughputMonitor(batch_size, window_size=2)],
    )
    trainer.logger = CSVLogger(trainer.default_root_dir)  # these tests read metrics.csv
    model = Counted()
    trainer.test(model, verbose=False)
    trainer.test(model, verbose=False)
    test = rows(trainer, "test/")
    assert [(row["step"], row["test/batches"], row["test/samples"]) for row in test] == [
        (1, 1, 8),
        (2, 2, 16),
        (3, 3, 24),
        (4, 4, 32),
    ]
    assert "test/device/batches_per_sec" in test[1]
    assert "test/device/batches_per_sec" not in test[2]  # each run measures time afresh; the counts add up
    trainer.predict(model)
    assert [row["predict/batches"] for row in rows(trainer, "predict/")] == [1, 2, 3]


def test_throughput_rates_over_the_window() -> None:
    throughput = Throughput(window_size=3)
    for second in range(1, 6):
        throughput.update(time=float(second), batches=second, samples=4 * second, lengths=40 * second, flops=50)
    metrics = throughput.compute()
    assert metrics == {
        "time": 5.0,
        "batches": 5,
        "samples": 20,
        "lengths": 200,
        "device/batches_per_sec": 1.0,
        "device/samples_per_sec": 4.0,
        "device/items_per_sec": 40.0,
        "device/flops_per_sec": 50.0,
    }


def test_throughput_totals_and_mfu_with_several_processes() -> None:
    throughput = Throughput(available_flops=200.0, world_size=2, window_size=2, separator="|")
    throughput.update(time=1.0, batches=1, samples=2, flops=100)
    throughput.update(time=3.0, batches=3, samples=6, flops=100)
    metrics = throughput.compute()
    assert metrics["device|batches_per_sec"] == 1.0
    assert metrics["batches_per_sec"] == 2.0
    assert metrics["samples_per_sec"] == 4.0
    assert metrics["flops_per_sec"] == 100.0  # 2 processes x 100 FLOPs in 2 seconds
    assert metrics["device|flops_per_sec"] == 50.0
    assert metrics["device|mfu"] == 0.25


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"time": 1.0, "batches": 2, "samples": 1}, r"samples \(1\) must be >= batches \(2\)"),
        ({"time": 1.0, "batches": 1, "samples": 2, "lengths": 1}, r"lengths \(1\) must be >= samples \(2\)"),
        ({"time": 0.5, "batches": 2, "samples": 2}, r"time must increase"),
    ],
)
def test_throughput_rejects_inconsistent_totals(update, message) -> None:
    throughput = Throughput()
    throughput.update(time=1.0, batches=1, samples=1)
    with pytest.raises(ValueError, match=message):
        throughput.update(**update)
