"""What a Module does without being told, as a LightningModule does: predict_step and zeroing grads before validation."""

from __future__ import annotations

import torch

import ember
from ember.testing import TinyModel

INPUTS = torch.randn(12, 32)


class NoPredictStep(TinyModel):
    """A model that only says how to train; its predict dataloader yields inputs only."""

    predict_step = ember.Module.predict_step  # the default, not TinyModel's

    def predict_dataloader(self):
        return torch.utils.data.DataLoader(INPUTS, batch_size=4)


def test_the_default_predict_step_returns_the_models_output(trainer_factory) -> None:
    model = NoPredictStep()
    predictions = trainer_factory().predict(model)
    assert len(predictions) == 3
    with torch.no_grad():
        assert torch.allclose(torch.cat(predictions), model(INPUTS))


def test_the_default_predict_step_accepts_the_batch_as_a_keyword(tiny_model) -> None:
    batch = torch.randn(2, 32)
    with torch.no_grad():
        assert torch.equal(ember.Module.predict_step(tiny_model, batch=batch), tiny_model(batch))


class GradientsAtValidation(TinyModel):
    def __init__(self):
        super().__init__()
        self.grads_at_validation: list[bool] = []
        self.zero_grad_calls = 0

    def on_validation_model_zero_grad(self):
        self.zero_grad_calls += 1
        super().on_validation_model_zero_grad()

    def validation_step(self, batch, batch_idx):
        if batch_idx == 0:
            self.grads_at_validation.append(any(p.grad is not None for p in self.parameters()))
        return super().validation_step(batch, batch_idx)


def test_gradients_are_released_before_validation_inside_fit(trainer_factory) -> None:
    model = GradientsAtValidation()
    trainer_factory(max_epochs=2, limit_train_batches=4, limit_val_batches=1, num_sanity_val_steps=0).fit(model)
    assert model.zero_grad_calls == 2
    assert model.grads_at_validation == [False, False]


def test_gradients_being_accumulated_are_kept_through_validation(trainer_factory) -> None:
    model = GradientsAtValidation()
    trainer = trainer_factory(
        max_epochs=1,
        limit_train_batches=4,
        val_check_interval=1,
        limit_val_batches=1,
        accumulate_grad_batches=2,
        num_sanity_val_steps=0,
    )
    trainer.fit(model)
    # validation after batches 1..4; zero_grad only after the batches that stepped (2 and 4)
    assert model.zero_grad_calls == 2
    assert model.grads_at_validation[0] is True
