"""When fit stops: max/min epochs and steps, should_stop, and a batch hook returning -1."""

from __future__ import annotations

import torch

import ember
from ember.testing import TinyModel


class StopAt(ember.Callback):
    """Sets trainer.should_stop at the end of epoch ``epoch`` and records every epoch run."""

    def __init__(self, epoch: int = 0) -> None:
        self.epoch, self.epochs = epoch, []

    def on_train_epoch_end(self, trainer, pl_module):
        self.epochs.append(trainer.current_epoch)
        if trainer.current_epoch >= self.epoch:
            trainer.should_stop = True


def test_max_epochs(trainer_factory, tiny_model) -> None:
    trainer = trainer_factory(max_epochs=3)
    trainer.fit(tiny_model)
    assert trainer.current_epoch == 3
    assert trainer.global_step == 3 * 8


def test_max_steps_stops_inside_an_epoch(trainer_factory, tiny_model) -> None:
    trainer = trainer_factory(max_epochs=10, max_steps=5)
    trainer.fit(tiny_model)
    assert trainer.global_step == 5
    assert trainer.current_epoch == 1  # the stopped epoch still ends


def test_should_stop_ends_fit_after_the_epoch(trainer_factory, tiny_model) -> None:
    stopper = StopAt(epoch=1)
    trainer = trainer_factory(max_epochs=10, callbacks=[stopper])
    trainer.fit(tiny_model)
    assert stopper.epochs == [0, 1]
    assert trainer.current_epoch == 2


def test_should_stop_waits_for_min_epochs(trainer_factory, tiny_model) -> None:
    stopper = StopAt(epoch=0)
    trainer_factory(max_epochs=10, min_epochs=3, callbacks=[stopper]).fit(tiny_model)
    assert stopper.epochs == [0, 1, 2]


def test_should_stop_waits_for_min_steps(trainer_factory, tiny_model) -> None:
    class StopEveryBatch(ember.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            trainer.should_stop = True

    trainer = trainer_factory(max_epochs=10, min_steps=12, callbacks=[StopEveryBatch()])
    trainer.fit(tiny_model)
    assert trainer.global_step == 12


def test_on_train_batch_start_returning_minus_one_ends_the_epoch(trainer_factory) -> None:
    class ThreeBatches(TinyModel):
        def on_train_batch_start(self, batch, batch_idx):
            return -1 if batch_idx == 3 else None

    trainer = trainer_factory(max_epochs=2)
    trainer.fit(ThreeBatches())
    assert trainer.global_step == 2 * 3
    assert trainer.current_epoch == 2


def test_a_training_step_returning_none_skips_backward_and_keeps_the_weights(trainer_factory) -> None:
    class Skips(TinyModel):
        def training_step(self, batch, batch_idx):
            return None

    model = Skips()
    before = [p.detach().clone() for p in model.parameters()]
    trainer = trainer_factory(max_epochs=1)
    trainer.fit(model)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert trainer.global_step == 8  # as in Lightning, the step is counted


def test_fit_twice_continues_from_where_it_stopped(trainer_factory, tiny_model) -> None:
    trainer = trainer_factory(max_epochs=2)
    trainer.fit(tiny_model)
    trainer.fit(tiny_model)
    assert trainer.current_epoch == 2 and trainer.global_step == 16
