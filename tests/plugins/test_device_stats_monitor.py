"""DeviceStatsMonitor: CPU (and CUDA) statistics under Lightning's keys, read back from metrics.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from ember.callbacks import DeviceStatsMonitor
from ember.errors import MisconfigurationError
from ember.loggers import CSVLogger
from ember.testing import TinyModel

CPU_STATS = ("cpu_percent", "cpu_vm_percent", "cpu_swap_percent")


def rows(trainer) -> list[dict[str, float]]:
    with open(Path(trainer.log_dir) / "metrics.csv", newline="") as handle:
        return [{key: float(value) for key, value in row.items() if value} for row in csv.DictReader(handle)]


def steps_of(trainer, key: str) -> list[int]:
    return [int(row["step"]) for row in rows(trainer) if key in row]


def run_fit(trainer_factory, monitor, **overrides):
    options = dict(
        max_epochs=1, limit_train_batches=3, limit_val_batches=2, num_sanity_val_steps=0, log_every_n_steps=1
    )
    trainer = trainer_factory(callbacks=[monitor], **{**options, **overrides})
    trainer.logger = CSVLogger(trainer.default_root_dir)  # these tests read metrics.csv
    trainer.fit(TinyModel())
    return trainer


def test_logs_cpu_stats_around_every_train_and_validation_batch(trainer_factory) -> None:
    trainer = run_fit(trainer_factory, DeviceStatsMonitor())
    for hook in ("on_train_batch_start", "on_train_batch_end"):
        for stat in CPU_STATS:
            assert steps_of(trainer, f"DeviceStatsMonitor.{hook}/{stat}") == [0, 1, 2]
    for hook in ("on_validation_batch_start", "on_validation_batch_end"):
        for stat in CPU_STATS:
            assert len(steps_of(trainer, f"DeviceStatsMonitor.{hook}/{stat}")) == 2
    values = [value for row in rows(trainer) for key, value in row.items() if key.startswith("DeviceStatsMonitor.")]
    assert values and all(0.0 <= value <= 100.0 for value in values)


def test_logs_around_test_batches(trainer_factory) -> None:
    trainer = trainer_factory(callbacks=[DeviceStatsMonitor()], limit_test_batches=2, log_every_n_steps=1)
    trainer.logger = CSVLogger(trainer.default_root_dir)  # these tests read metrics.csv
    trainer.test(TinyModel(), verbose=False)
    for hook in ("on_test_batch_start", "on_test_batch_end"):
        assert len(steps_of(trainer, f"DeviceStatsMonitor.{hook}/cpu_vm_percent")) == 2


def test_logs_every_n_steps(trainer_factory) -> None:
    trainer = run_fit(trainer_factory, DeviceStatsMonitor(), limit_train_batches=4, log_every_n_steps=2)
    assert steps_of(trainer, "DeviceStatsMonitor.on_train_batch_end/cpu_percent") == [1, 3]


def test_cpu_stats_false_logs_nothing_on_the_cpu(trainer_factory) -> None:
    trainer = run_fit(trainer_factory, DeviceStatsMonitor(cpu_stats=False))
    assert not any(key.startswith("DeviceStatsMonitor") for row in rows(trainer) for key in row)


class MyStats(DeviceStatsMonitor):
    pass


def test_a_subclass_logs_under_its_own_name(trainer_factory) -> None:
    trainer = run_fit(trainer_factory, MyStats())
    assert steps_of(trainer, "MyStats.on_train_batch_start/cpu_percent") == [0, 1, 2]


def test_fit_without_a_logger_is_an_error(trainer_factory) -> None:
    trainer = trainer_factory(logger=False, callbacks=[DeviceStatsMonitor()])
    with pytest.raises(MisconfigurationError, match="DeviceStatsMonitor needs a logger"):
        trainer.fit(TinyModel())


def test_test_without_a_logger_runs(trainer_factory) -> None:
    trainer = trainer_factory(logger=False, callbacks=[DeviceStatsMonitor()], limit_test_batches=1)
    assert trainer.test(TinyModel(), verbose=False)[0]["test_loss"] > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cpu_stats", [None, True])
def test_logs_cuda_memory_stats_on_a_gpu(trainer_factory, cpu_stats) -> None:
    trainer = run_fit(trainer_factory, DeviceStatsMonitor(cpu_stats=cpu_stats), accelerator="cuda", devices=1)
    assert steps_of(trainer, "DeviceStatsMonitor.on_train_batch_end/allocated_bytes.all.current") == [0, 1, 2]
    peak = "DeviceStatsMonitor.on_train_batch_end/allocated_bytes.all.peak"
    assert max(row[peak] for row in rows(trainer) if peak in row) > 0
    logs_cpu = bool(steps_of(trainer, "DeviceStatsMonitor.on_train_batch_end/cpu_percent"))
    assert logs_cpu is bool(cpu_stats)
