"""GradientAccumulationScheduler: optimizer steps per epoch follow the schedule, also across a resume."""

from __future__ import annotations

import pytest
import torch

import ember
from ember.callbacks import GradientAccumulationScheduler
from ember.errors import EmberWarning, MisconfigurationError
from ember.testing import TinyModel
from ember.testing.models import regression_data


class StepsPerEpoch(ember.Callback):
    """Optimizer steps taken in each epoch, and the accumulation factor each epoch saw."""

    def __init__(self) -> None:
        self.steps: dict[int, int] = {}
        self.factors: dict[int, int] = {}
        self._start = 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = trainer.global_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.factors[trainer.current_epoch] = trainer.accumulate_grad_batches

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.steps[trainer.current_epoch] = trainer.global_step - self._start


def test_optimizer_steps_per_epoch_follow_the_schedule(trainer_factory) -> None:
    record = StepsPerEpoch()
    scheduler = GradientAccumulationScheduler(scheduling={1: 2, 2: 3, 3: 8})
    trainer_factory(callbacks=[scheduler, record], max_epochs=4).fit(TinyModel())
    # 8 batches per epoch; a window still open at the epoch's last batch steps there too
    assert record.steps == {0: 8, 1: 4, 2: 3, 3: 1}
    assert record.factors == {0: 1, 1: 2, 2: 3, 3: 8}


def test_accumulated_steps_equal_one_step_on_the_summed_loss(trainer_factory) -> None:
    torch.manual_seed(0)
    accumulated, plain = TinyModel(batch_size=4), TinyModel(batch_size=8)
    plain.load_state_dict(accumulated.state_dict())

    # same samples in the same order: shuffling off, 4-sample batches accumulated in pairs = 8-sample batches
    for model in (accumulated, plain):
        loader = torch.utils.data.DataLoader(regression_data(64, 32, seed=0), batch_size=model.hparams.batch_size)
        model.train_dataloader = lambda loader=loader: loader
    trainer_factory(callbacks=[GradientAccumulationScheduler({0: 2})], max_epochs=1).fit(accumulated)
    trainer_factory(max_epochs=1).fit(plain)
    for a, b in zip(accumulated.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b)


class SaveAt(ember.Callback):
    """Writes a checkpoint before batch ``batch_idx`` of ``epoch`` (nothing of that batch has run yet)."""

    def __init__(self, path, epoch: int, batch_idx: int) -> None:
        self.path, self.epoch, self.batch_idx = path, epoch, batch_idx

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch_idx:
            trainer.save_checkpoint(self.path)


@pytest.mark.parametrize("batch_idx", [0, 5], ids=["at-epoch-start", "mid-epoch"])
def test_a_resumed_run_accumulates_as_the_uninterrupted_one(trainer_factory, tmp_path, batch_idx) -> None:
    schedule = {1: 3, 2: 2}
    path = tmp_path / "resume.ckpt"
    full = StepsPerEpoch()
    torch.manual_seed(0)
    trainer_factory(
        callbacks=[GradientAccumulationScheduler(schedule), full, SaveAt(path, 1, batch_idx)], max_epochs=3
    ).fit(TinyModel())
    assert full.steps == {0: 8, 1: 3, 2: 4}

    resumed = StepsPerEpoch()
    trainer = trainer_factory(callbacks=[GradientAccumulationScheduler(schedule), resumed], max_epochs=3)
    trainer.fit(TinyModel(), ckpt_path=path)
    assert trainer.global_step == 8 + 3 + 4
    assert resumed.factors == {1: 3, 2: 2}
    assert resumed.steps[2] == full.steps[2]


def test_the_same_trainer_can_fit_again(trainer_factory) -> None:
    record = StepsPerEpoch()
    trainer = trainer_factory(callbacks=[GradientAccumulationScheduler({0: 4}), record], max_epochs=1)
    model = TinyModel()
    trainer.fit(model)
    trainer.max_epochs = 2
    trainer.fit(model)
    assert record.steps == {0: 2, 1: 2}


def test_trainer_accumulate_grad_batches_and_the_callback_exclude_each_other(trainer_factory) -> None:
    trainer = trainer_factory(callbacks=[GradientAccumulationScheduler({1: 2})], accumulate_grad_batches=2)
    with pytest.raises(MisconfigurationError, match=r"accumulate_grad_batches=2\).*remove"):
        trainer.fit(TinyModel())


class Manual(TinyModel):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        optimizer = self.optimizers()
        optimizer.zero_grad()
        loss = self._loss(batch)
        self.manual_backward(loss)
        optimizer.step()


def test_manual_optimization_is_refused_with_a_clear_error(trainer_factory) -> None:
    trainer = trainer_factory(callbacks=[GradientAccumulationScheduler({1: 2})])
    with pytest.raises(MisconfigurationError, match="manual optimization"):
        trainer.fit(Manual())


class OwnStep(TinyModel):
    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        optimizer.step(closure=optimizer_closure)


def test_overriding_optimizer_step_while_accumulating_warns(trainer_factory) -> None:
    trainer = trainer_factory(callbacks=[GradientAccumulationScheduler({0: 2})], max_epochs=1)
    with pytest.warns(EmberWarning, match="overrides optimizer_step"):
        trainer.fit(OwnStep())
    assert trainer.global_step == 4


@pytest.mark.parametrize(
    ("scheduling", "error", "match"),
    [
        ({}, TypeError, "non-empty dict"),
        ({-1: 2}, MisconfigurationError, "epochs must be ints >= 0"),
        ({"1": 2}, MisconfigurationError, "epochs must be ints >= 0"),
        ({1: 0}, MisconfigurationError, "factors must be ints >= 1"),
        ({1: 1.5}, MisconfigurationError, "factors must be ints >= 1"),
    ],
)
def test_bad_schedules_are_refused(scheduling, error, match) -> None:
    with pytest.raises(error, match=match):
        GradientAccumulationScheduler(scheduling)


def test_epochs_before_the_first_key_accumulate_one_batch() -> None:
    scheduler = GradientAccumulationScheduler({3: 4, 5: 2})
    assert [scheduler.get_accumulate_grad_batches(epoch) for epoch in range(7)] == [1, 1, 1, 4, 4, 2, 2]
    assert scheduler.going_to_accumulate_grad_batches()
