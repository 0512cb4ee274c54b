"""Timer: stops training when the budget is spent, measures each stage, and keeps its time across a resume."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import torch

from ember.callbacks import Timer
from ember.core.strategies.single import SingleDeviceStrategy
from ember.errors import MisconfigurationError
from ember.testing import TinyModel


class SlowModel(TinyModel):
    """Each training step takes at least 5 ms, so a budget of a tenth of a second ends within a few epochs."""

    def training_step(self, batch, batch_idx):
        time.sleep(0.005)
        return super().training_step(batch, batch_idx)


BUDGET = timedelta(seconds=0.1)


def test_stops_training_once_the_duration_is_spent(trainer_factory) -> None:
    timer = Timer(duration=BUDGET, verbose=False)
    trainer = trainer_factory(max_epochs=1000, callbacks=[timer])
    trainer.fit(SlowModel())
    assert trainer.should_stop
    assert 0 < trainer.global_step < 1000 * 8
    assert trainer.current_epoch < 1000
    assert timer.time_elapsed("train") >= BUDGET.total_seconds()
    assert timer.time_remaining("train") <= 0


def test_interval_epoch_stops_only_at_the_end_of_an_epoch(trainer_factory) -> None:
    timer = Timer(duration=BUDGET, interval="epoch", verbose=False)
    trainer = trainer_factory(max_epochs=1000, callbacks=[timer])
    trainer.fit(SlowModel())
    assert trainer.should_stop
    assert 1 <= trainer.current_epoch < 1000
    assert trainer.global_step == trainer.current_epoch * 8  # every epoch ran to its end


def test_interval_step_stops_inside_an_epoch(trainer_factory) -> None:
    """With 8 slow batches per epoch and a budget shorter than one epoch, fit stops after part of the first."""
    timer = Timer(duration=timedelta(seconds=0.02), interval="step", verbose=False)
    trainer = trainer_factory(max_epochs=1000, limit_val_batches=0, callbacks=[timer])

    class VerySlow(TinyModel):
        def training_step(self, batch, batch_idx):
            time.sleep(0.015)
            return super().training_step(batch, batch_idx)

    trainer.fit(VerySlow())
    assert trainer.should_stop
    assert trainer.global_step < 8
    assert trainer.current_epoch == 1  # the interrupted epoch still ends


def test_trainer_max_time_adds_a_timer_that_stops_training(trainer_factory) -> None:
    trainer = trainer_factory(max_time={"seconds": 0.1}, max_epochs=1000)
    timers = [c for c in trainer.callbacks if isinstance(c, Timer)]
    assert len(timers) == 1
    assert timers[0].time_remaining() == pytest.approx(0.1)
    trainer.fit(SlowModel())
    assert trainer.should_stop
    assert 0 < trainer.global_step
    assert timers[0].time_elapsed() >= 0.1


def test_a_timer_in_callbacks_takes_the_place_of_max_time(trainer_factory) -> None:
    mine = Timer(duration="00:01:00:00")
    trainer = trainer_factory(max_time="00:00:00:01", callbacks=[mine])
    assert [c for c in trainer.callbacks if isinstance(c, Timer)] == [mine]


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("01:02:03:04", 93784.0),
        ("00:00:00:01", 1.0),
        (timedelta(minutes=2), 120.0),
        ({"hours": 1, "seconds": 5}, 3605.0),
        (None, None),
    ],
)
def test_duration_formats(duration, seconds) -> None:
    assert Timer(duration=duration).time_remaining() == seconds


@pytest.mark.parametrize("duration", ["1:2:3", "01:02:03:xx", 30, {"hour": 1}])
def test_a_bad_duration_is_an_error_naming_it(duration) -> None:
    with pytest.raises(MisconfigurationError, match=r"Timer\(duration=.*'DD:HH:MM:SS'"):
        Timer(duration=duration)


def test_a_bad_interval_is_an_error_naming_it() -> None:
    with pytest.raises(MisconfigurationError, match=r"Timer\(interval='batch'\): accepted are 'step' and 'epoch'"):
        Timer(interval="batch")


def test_nothing_is_measured_before_a_run() -> None:
    timer = Timer()
    assert timer.start_time("train") is None
    assert timer.end_time("validate") is None
    assert timer.time_elapsed("test") == 0
    assert timer.time_remaining() is None
    with pytest.raises(MisconfigurationError, match="'training'"):
        timer.time_elapsed("training")


def test_measures_training_validation_and_test(trainer_factory) -> None:
    timer = Timer()
    trainer = trainer_factory(max_epochs=1, callbacks=[timer])
    trainer.fit(SlowModel())
    for stage in ("train", "validate"):
        assert timer.start_time(stage) is not None
        assert timer.end_time(stage) >= timer.start_time(stage)
        assert timer.time_elapsed(stage) == timer.end_time(stage) - timer.start_time(stage)
    assert timer.time_elapsed("train") >= 8 * 0.005
    assert timer.time_elapsed("train") > timer.time_elapsed("validate")
    assert timer.start_time("test") is None
    trainer.test(SlowModel(), verbose=False)
    assert timer.end_time("test") >= timer.start_time("test")
    assert not trainer.should_stop  # no duration: nothing stops


def test_verbose_logs_when_the_time_is_up(trainer_factory, caplog) -> None:
    trainer_factory(max_epochs=1000, callbacks=[Timer(duration=BUDGET)]).fit(SlowModel())
    assert "Time limit reached. Elapsed time is 0:00:00. Signaling Trainer to stop." in caplog.text


def test_verbose_false_logs_nothing(trainer_factory, caplog) -> None:
    trainer_factory(max_epochs=1000, callbacks=[Timer(duration=BUDGET, verbose=False)]).fit(SlowModel())
    assert "Time limit" not in caplog.text


def test_elapsed_training_time_is_saved_in_checkpoints_and_restored_on_resume(trainer_factory, tmp_path) -> None:
    first = Timer()
    trainer = trainer_factory(max_epochs=2, callbacks=[first])
    trainer.fit(SlowModel())
    path = tmp_path / "saved.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)["callbacks"][first.state_key]["time_elapsed"]
    assert set(saved) == {"train", "sanity_check", "validate", "test", "predict"}
    assert saved["train"] == first.time_elapsed("train") >= 16 * 0.005

    second = Timer()
    resumed = trainer_factory(max_epochs=3, callbacks=[second])
    resumed.fit(SlowModel(), ckpt_path=path)
    assert resumed.global_step == 3 * 8
    assert second.time_elapsed("train") >= saved["train"] + 8 * 0.005
    assert second.time_elapsed("validate") < second.time_elapsed("train")  # only training time carries over


def test_a_resumed_run_whose_budget_is_spent_stops_before_training(trainer_factory, tmp_path) -> None:
    trainer = trainer_factory(max_epochs=2, callbacks=[Timer()])
    trainer.fit(SlowModel())
    path = tmp_path / "saved.ckpt"
    trainer.save_checkpoint(path)

    budget = timedelta(seconds=0.05)  # less than the two epochs already took
    timer = Timer(duration=budget, verbose=False)
    resumed = trainer_factory(max_epochs=10, callbacks=[timer])
    resumed.fit(SlowModel(), ckpt_path=path)
    assert resumed.should_stop
    assert resumed.global_step == 2 * 8  # not a single batch more
    assert timer.time_elapsed() >= budget.total_seconds()


class BroadcastsDecision(SingleDeviceStrategy):
    """A process whose rank 0 decided ``decision``: broadcast hands every process rank 0's value."""

    def __init__(self, decision: bool) -> None:
        super().__init__(torch.device("cpu"))
        self.decision = decision

    def broadcast(self, obj, src=0):
        return self.decision


def test_rank_zero_decides_to_keep_going(trainer_factory) -> None:
    """This process's budget is spent from the start, but rank 0's is not: it trains to max_epochs."""
    trainer = trainer_factory(max_epochs=2, strategy=BroadcastsDecision(False), callbacks=[Timer(duration={})])
    trainer.fit(TinyModel())
    assert not trainer.should_stop
    assert trainer.global_step == 2 * 8


def test_rank_zero_decides_to_stop(trainer_factory) -> None:
    """This process has a day left, but rank 0 says stop: it stops before training, as rank 0 does."""
    timer = Timer(duration="01:00:00:00", verbose=False)
    trainer = trainer_factory(max_epochs=2, strategy=BroadcastsDecision(True), callbacks=[timer])
    trainer.fit(TinyModel())
    assert trainer.should_stop
    assert trainer.global_step == 0  # on_fit_start already checks, and rank 0 says stop


DDP_SCRIPT = """
import json, sys, time
import ember
from ember.callbacks import Timer
from ember.testing import TinyModel


class Slow(TinyModel):
    def training_step(self, batch, batch_idx):
        time.sleep(0.01)
        return super().training_step(batch, batch_idx)


class RankBudget(Timer):
    '''Each rank gets its own budget, to show that rank 0's decides.'''

    def __init__(self, budgets):
        super().__init__(verbose=False)
        self.budgets = budgets

    def setup(self, trainer, pl_module, stage):
        self._duration = self.budgets[trainer.global_rank]


budgets, max_epochs, root = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
trainer = ember.Trainer(
    strategy="ddp", accelerator="cpu", devices=2, max_epochs=max_epochs, callbacks=[RankBudget(budgets)],
    logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
)
trainer.fit(Slow())
with open(f"{root}/result_{trainer.global_rank}.json", "w") as handle:
    json.dump({"step": trainer.global_step, "epoch": trainer.current_epoch, "stop": trainer.should_stop}, handle)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("budgets", "max_epochs", "stops"),
    [
        ([0.05, 86400.0], 100, True),  # rank 0's short budget stops both, on the same step
        ([86400.0, 0.0], 2, False),  # rank 1's spent budget stops nobody: rank 0 decides
    ],
)
def test_every_rank_stops_on_rank_zeros_decision(tmp_path, budgets, max_epochs, stops) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "timer_ddp.py"
    script.write_text(DDP_SCRIPT)
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    command = [sys.executable, str(script), json.dumps(budgets), str(max_epochs), str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    first, second = (json.loads((tmp_path / f"result_{rank}.json").read_text()) for rank in (0, 1))
    assert first == second
    assert first["stop"] is stops
    if stops:
        assert first["step"] < max_epochs * 4
    else:
        assert first["step"] == max_epochs * 4  # 8 batches shared by 2 ranks: 4 steps per epoch
