"""SpikeDetection: which losses are spikes, the exception and the skip file, tolerances, non-finite losses, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import ember
from ember.callbacks import SpikeDetection
from ember.core.state import TrainerStatus
from ember.errors import MisconfigurationError
from ember.plugins.spike_detection import TrainingSpikeException


class ScriptedLoss(ember.Module):
    """Training losses read from a script: ``losses[epoch][batch_idx]``, one batch per entry."""

    def __init__(self, losses: list[list[float]]) -> None:
        super().__init__()
        self.losses = losses
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        value = self.losses[self.current_epoch][batch_idx]
        if value is None:
            return None
        return self.weight.sum() * 0 + value

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(torch.zeros(len(self.losses[0]), 1)), batch_size=1)


def run(trainer_factory: Any, losses: list[list[float]], callback: SpikeDetection, **kwargs: Any) -> Any:
    trainer = trainer_factory(max_epochs=len(losses), callbacks=[callback], **kwargs)
    trainer.fit(ScriptedLoss(losses))
    return trainer


# ---------------------------------------------------------------- detection
def test_a_spike_raises_and_writes_the_previous_and_current_batch(trainer_factory: Any, tmp_path: Path) -> None:
    callback = SpikeDetection(window=3)
    trainer = trainer_factory(callbacks=[callback])
    with pytest.raises(TrainingSpikeException, match="Training spike detected in batch 4") as raised:
        trainer.fit(ScriptedLoss([[1.0, 0.9, 0.8, 0.85, 5.0, 0.7]]))
    assert raised.value.batch_idx == 4
    written = tmp_path / "skip_batches.json"
    assert written.read_text() == "[\n    3,\n    4\n]"  # json.dump(..., indent=4), as Lightning writes it
    assert callback.bad_batches == [3, 4]
    assert trainer.state.status == TrainerStatus.INTERRUPTED
    assert trainer.global_step == 5


def test_losses_within_the_tolerance_train_to_the_end(trainer_factory: Any) -> None:
    callback = SpikeDetection(window=3)
    losses = [[1.0, 1.2, 0.9, 1.5, 2.0, 1.4]]
    run(trainer_factory, losses, callback)
    assert callback.running_mean == pytest.approx((1.5 + 2.0 + 1.4) / 3)
    assert callback.last_val == pytest.approx(1.4)
    assert callback.bad_batches == []


def test_an_improvement_is_never_a_spike(trainer_factory: Any) -> None:
    run(trainer_factory, [[1.0, 1.0, 0.001, 0.001]], SpikeDetection())
    with pytest.raises(TrainingSpikeException, match="batch 2"):
        run(trainer_factory, [[1.0, 1.0, 0.001, 0.001]], SpikeDetection(mode="max", rtol=0.5))
    run(trainer_factory, [[1.0, 1.0, 9.0, 9.0]], SpikeDetection(mode="max", rtol=0.5))


def test_warmup_batches_of_each_epoch_are_not_checked(trainer_factory: Any) -> None:
    run(trainer_factory, [[1.0, 1.0, 9.0, 9.0]], SpikeDetection(warmup=3))
    with pytest.raises(TrainingSpikeException, match="batch 2"):
        run(trainer_factory, [[1.0, 1.0, 1.0], [1.0, 1.0, 9.0]], SpikeDetection(warmup=2))


def test_atol_and_rtol_must_both_be_exceeded(trainer_factory: Any) -> None:
    run(trainer_factory, [[1.0, 1.0, 1.4]], SpikeDetection(atol=0.5, rtol=None))
    with pytest.raises(TrainingSpikeException):
        run(trainer_factory, [[1.0, 1.0, 1.6]], SpikeDetection(atol=0.5, rtol=None))
    run(trainer_factory, [[1.0, 1.0, 1.6]], SpikeDetection(atol=0.5, rtol=1.0))  # 0.6 < 1.0 * mean
    with pytest.raises(TrainingSpikeException):
        run(trainer_factory, [[1.0, 1.0, 2.1]], SpikeDetection(atol=0.5, rtol=1.0))


@pytest.mark.filterwarnings("ignore:the training loss is")  # non-finite on purpose
def test_a_non_finite_loss_is_a_spike_when_finite_only(trainer_factory: Any) -> None:
    with pytest.raises(TrainingSpikeException, match="batch 2"):
        run(trainer_factory, [[1.0, 1.0, math.nan, 1.0]], SpikeDetection())


@pytest.mark.filterwarnings("ignore:the training loss is")  # non-finite on purpose
def test_without_finite_only_nan_is_ignored_and_infinity_judged_by_the_tolerance(trainer_factory: Any) -> None:
    callback = SpikeDetection(finite_only=False)
    run(trainer_factory, [[1.0, 1.0, math.nan, 1.0]], callback)
    assert callback.running_mean == 1.0 and callback.bad_batches == []
    with pytest.raises(TrainingSpikeException, match="batch 2"):
        run(trainer_factory, [[1.0, 1.0, math.inf, 1.0]], SpikeDetection(finite_only=False))


def test_skipped_batches_are_not_judged(trainer_factory: Any) -> None:
    callback = SpikeDetection(window=2)
    run(trainer_factory, [[1.0, None, 1.0, None]], callback)
    assert list(callback.state_dict()["running"]) == [1.0, 1.0]


# -------------------------------------------------------------- skip file
def test_exclude_batches_path_may_be_a_folder_or_a_json_file(trainer_factory: Any, tmp_path: Path) -> None:
    with pytest.raises(TrainingSpikeException):
        run(trainer_factory, [[1.0, 9.0]], SpikeDetection(exclude_batches_path=tmp_path / "bad"))
    assert json.loads((tmp_path / "bad" / "skip_batches.json").read_text()) == [0, 1]
    with pytest.raises(TrainingSpikeException):
        run(trainer_factory, [[1.0, 9.0]], SpikeDetection(exclude_batches_path=tmp_path / "mine.json"))
    assert json.loads((tmp_path / "mine.json").read_text()) == [0, 1]


# ------------------------------------------------------------------- resume
class CrashAfterEpoch(ember.Callback):
    def __init__(self, path: Path) -> None:
        self.path = path

    @ember.hookimpl(trylast=True)
    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.current_epoch == 0:
            trainer.save_checkpoint(self.path)
            raise RuntimeError("simulated crash")


def test_resume_keeps_the_running_statistics(trainer_factory: Any, tmp_path: Path) -> None:
    losses = [[1.0, 1.1, 0.9, 1.2], [1.1, 1.3, 1.0, 0.8], [0.9, 1.0, 1.1, 1.2]]
    whole = SpikeDetection(window=10)
    run(trainer_factory, losses, whole)

    path = tmp_path / "crash.ckpt"
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer_factory(max_epochs=3, callbacks=[SpikeDetection(window=10), CrashAfterEpoch(path)]).fit(
            ScriptedLoss(losses)
        )
    state = torch.load(path, weights_only=True)["callbacks"][SpikeDetection(window=10).state_key]
    assert state["running"] == pytest.approx([1.0, 1.1, 0.9, 1.2])
    resumed = SpikeDetection(window=10)
    trainer_factory(max_epochs=3, callbacks=[resumed]).fit(ScriptedLoss(losses), ckpt_path=path)
    assert resumed.state_dict() == whole.state_dict()


def test_a_resumed_run_judges_its_first_batch_against_the_saved_mean(trainer_factory: Any, tmp_path: Path) -> None:
    losses = [[1.0, 1.0, 1.0], [4.0, 1.0, 1.0]]
    path = tmp_path / "crash.ckpt"
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer_factory(max_epochs=2, callbacks=[SpikeDetection(warmup=0), CrashAfterEpoch(path)]).fit(
            ScriptedLoss(losses)
        )
    resumed = SpikeDetection(warmup=0)
    with pytest.raises(TrainingSpikeException, match="batch 0"):
        trainer_factory(max_epochs=2, callbacks=[resumed]).fit(ScriptedLoss(losses), ckpt_path=path)
    assert resumed.bad_batches == [-1, 0]


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "up"}, "mode='up'"),
        ({"window": 0}, "window=0"),
        ({"warmup": -1}, "warmup=-1"),
        ({"atol": "big"}, "atol='big'"),
        ({"rtol": True}, "rtol=True"),
    ],
)
def test_bad_arguments_are_rejected_with_the_value_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(MisconfigurationError, match=message):
        SpikeDetection(**kwargs)


def test_outputs_without_a_loss_tensor_are_a_type_error(trainer_factory: Any) -> None:
    class Manual(ScriptedLoss):
        def __init__(self) -> None:
            super().__init__([[1.0, 1.0]])
            self.automatic_optimization = False

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            return "done"

    trainer = trainer_factory(max_epochs=1, callbacks=[SpikeDetection()])
    with pytest.raises(TypeError, match="got str"):
        trainer.fit(Manual())
