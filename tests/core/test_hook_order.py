"""Whole hook sequences, callback (cb.) and model (m.) hooks interleaved, as Lightning 2.x calls them.

The expected lists were recorded from pytorch-lightning 2.6.6 running the same
configuration: one epoch of two training batches, one sanity-check batch and
one validation batch.
"""

from __future__ import annotations

import pytest

import ember
from ember.testing import HookRecorder, TinyModel, recording_module

FIT = [
    "m.configure_callbacks",
    "m.prepare_data",
    "cb.setup",
    "m.setup",
    "m.configure_model",
    "m.configure_optimizers",
    "cb.on_fit_start",
    "m.on_fit_start",
    "cb.on_sanity_check_start",
    "m.val_dataloader",
    "m.on_validation_model_eval",
    "cb.on_validation_start",
    "m.on_validation_start",
    "cb.on_validation_epoch_start",
    "m.on_validation_epoch_start",
    "m.on_before_batch_transfer",
    "m.transfer_batch_to_device",
    "m.on_after_batch_transfer",
    "cb.on_validation_batch_start",
    "m.on_validation_batch_start",
    "m.validation_step",
    "cb.on_validation_batch_end",
    "m.on_validation_batch_end",
    "cb.on_validation_epoch_end",
    "m.on_validation_epoch_end",
    "cb.on_validation_end",
    "m.on_validation_end",
    "m.on_validation_model_train",
    "cb.on_sanity_check_end",
    "m.train_dataloader",
    "cb.on_train_start",
    "m.on_train_start",
    "cb.on_train_epoch_start",
    "m.on_train_epoch_start",
    "m.on_before_batch_transfer",
    "m.transfer_batch_to_device",
    "m.on_after_batch_transfer",
    "cb.on_train_batch_start",
    "m.on_train_batch_start",
    "m.optimizer_step",
    "m.training_step",
    "cb.on_before_zero_grad",
    "m.on_before_zero_grad",
    "m.optimizer_zero_grad",
    "cb.on_before_backward",
    "m.on_before_backward",
    "m.backward",
    "cb.on_after_backward",
    "m.on_after_backward",
    "cb.on_before_optimizer_step",
    "m.on_before_optimizer_step",
    "m.configure_gradient_clipping",
    "cb.on_train_batch_end",
    "m.on_train_batch_end",
    "m.on_before_batch_transfer",
    "m.transfer_batch_to_device",
    "m.on_after_batch_transfer",
    "cb.on_train_batch_start",
    "m.on_train_batch_start",
    "m.optimizer_step",
    "m.training_step",
    "cb.on_before_zero_grad",
    "m.on_before_zero_grad",
    "m.optimizer_zero_grad",
    "cb.on_before_backward",
    "m.on_before_backward",
    "m.backward",
    "cb.on_after_backward",
    "m.on_after_backward",
    "cb.on_before_optimizer_step",
    "m.on_before_optimizer_step",
    "m.configure_gradient_clipping",
    "cb.on_train_batch_end",
    "m.on_train_batch_end",
    "m.on_validation_model_zero_grad",
    "m.on_validation_model_eval",
    "cb.on_validation_start",
    "m.on_validation_start",
    "cb.on_validation_epoch_start",
    "m.on_validation_epoch_start",
    "m.on_before_batch_transfer",
    "m.transfer_batch_to_device",
    "m.on_after_batch_transfer",
    "cb.on_validation_batch_start",
    "m.on_validation_batch_start",
    "m.validation_step",
    "cb.on_validation_batch_end",
    "m.on_validation_batch_end",
    "cb.on_validation_epoch_end",
    "m.on_validation_epoch_end",
    "cb.on_validation_end",
    "m.on_validation_end",
    "m.on_validation_model_train",
    "cb.on_train_epoch_end",
    "m.on_train_epoch_end",
    "cb.on_train_end",
    "m.on_train_end",
    "cb.on_fit_end",
    "m.on_fit_end",
    "cb.teardown",
    "m.teardown",
]

VALIDATE = [
    "m.configure_callbacks",
    "m.prepare_data",
    "cb.setup",
    "m.setup",
    "m.configure_model",
    "m.val_dataloader",
    "m.on_validation_model_eval",
    "cb.on_validation_start",
    "m.on_validation_start",
    "cb.on_validation_epoch_start",
    "m.on_validation_epoch_start",
    "m.on_before_batch_transfer",
    "m.transfer_batch_to_device",
    "m.on_after_batch_transfer",
    "cb.on_validation_batch_start",
    "m.on_validation_batch_start",
    "m.validation_step",
    "cb.on_validation_batch_end",
    "m.on_validation_batch_end",
    "cb.on_validation_epoch_end",
    "m.on_validation_epoch_end",
    "cb.on_validation_end",
    "m.on_validation_end",
    "m.on_validation_model_train",
    "cb.teardown",
    "m.teardown",
]

TEST = [
    "m.configure_callbacks",
    "m.prepare_data",
    "cb.setup",
    "m.setup",
    "m.configure_model",
    "m.test_dataloader",
    "m.on_test_model_eval",
    "cb.on_test_start",
    "m.on_test_start",
    "cb.on_test_epoch_start",
    "m.on_test_epoch_start",
    "m.on_before_batch_transfer",
    "m.transfer_batch_to_device",
    "m.on_after_batch_transfer",
    "cb.on_test_batch_start",
    "m.on_test_batch_start",
    "m.test_step",
    "cb.on_test_batch_end",
    "m.on_test_batch_end",
    "cb.on_test_epoch_end",
    "m.on_test_epoch_end",
    "cb.on_test_end",
    "m.on_test_end",
    "m.on_test_model_train",
    "cb.teardown",
    "m.teardown",
]

PREDICT = [
    "m.configure_callbacks",
    "m.prepare_data",
    "cb.setup",
    "m.setup",
    "m.configure_model",
    "m.predict_dataloader",
    "m.on_predict_model_eval",
    "cb.on_predict_start",
    "m.on_predict_start",
    "cb.on_predict_epoch_start",
    "m.on_predict_epoch_start",
    "m.on_before_batch_transfer",
    "m.transfer_batch_to_device",
    "m.on_after_batch_transfer",
    "cb.on_predict_batch_start",
    "m.on_predict_batch_start",
    "m.predict_step",
    "cb.on_predict_batch_end",
    "m.on_predict_batch_end",
    "cb.on_predict_epoch_end",
    "m.on_predict_epoch_end",
    "cb.on_predict_end",
    "m.on_predict_end",
    "cb.teardown",
    "m.teardown",
]

FIT_RAISING = [
    "m.configure_callbacks",
    "m.prepare_data",
    "cb.setup",
    "m.setup",
    "m.configure_model",
    "m.configure_optimizers",
    "cb.on_fit_start",
    "m.on_fit_start",
    "cb.on_sanity_check_start",
    "m.val_dataloader",
    "m.on_validation_model_eval",
    "cb.on_validation_start",
    "m.on_validation_start",
    "cb.on_validation_epoch_start",
    "m.on_validation_epoch_start",
    "m.on_before_batch_transfer",
    "m.transfer_batch_to_device",
    "m.on_after_batch_transfer",
    "cb.on_validation_batch_start",
    "m.on_validation_batch_start",
    "m.validation_step",
    "cb.on_validation_batch_end",
    "m.on_validation_batch_end",
    "cb.on_validation_epoch_end",
    "m.on_validation_epoch_end",
    "cb.on_validation_end",
    "m.on_validation_end",
    "m.on_validation_model_train",
    "cb.on_sanity_check_end",
    "m.train_dataloader",
    "cb.on_train_start",
    "m.on_train_start",
    "cb.on_train_epoch_start",
    "m.on_train_epoch_start",
    "m.on_before_batch_transfer",
    "m.transfer_batch_to_device",
    "m.on_after_batch_transfer",
    "cb.on_train_batch_start",
    "m.on_train_batch_start",
    "m.optimizer_step",
    "m.training_step",
    "cb.on_before_zero_grad",
    "m.on_before_zero_grad",
    "m.optimizer_zero_grad",
    "cb.on_before_backward",
    "m.on_before_backward",
    "m.backward",
    "cb.on_after_backward",
    "m.on_after_backward",
    "cb.on_before_optimizer_step",
    "m.on_before_optimizer_step",
    "m.configure_gradient_clipping",
    "cb.on_train_batch_end",
    "m.on_train_batch_end",
    "m.on_before_batch_transfer",
    "m.transfer_batch_to_device",
    "m.on_after_batch_transfer",
    "cb.on_train_batch_start",
    "m.on_train_batch_start",
    "m.optimizer_step",
    "m.training_step",
    "cb.on_exception",
]


OPTIONS = dict(
    max_epochs=1,
    limit_train_batches=2,
    limit_val_batches=1,
    limit_test_batches=1,
    limit_predict_batches=1,
    num_sanity_val_steps=1,
)


def run(trainer_factory, method: str, model_class: type = TinyModel, **callback_options) -> list[str]:
    calls: list[str] = []
    model = recording_module(model_class, calls)()
    trainer = trainer_factory(callbacks=[HookRecorder("cb.", calls)], **OPTIONS)
    kwargs = {"verbose": False} if method in ("validate", "test") else {}
    getattr(trainer, method)(model, **kwargs)
    return calls


@pytest.mark.parametrize(
    ("method", "expected"), [("fit", FIT), ("validate", VALIDATE), ("test", TEST), ("predict", PREDICT)]
)
def test_hook_order(trainer_factory, method: str, expected: list[str]) -> None:
    assert run(trainer_factory, method) == expected


class FailsAtSecondStep(TinyModel):
    def training_step(self, batch, batch_idx):
        if self.global_step == 1:
            raise RuntimeError("boom")
        return super().training_step(batch, batch_idx)


def test_hook_order_of_a_fit_that_raises(trainer_factory) -> None:
    calls: list[str] = []
    model = recording_module(FailsAtSecondStep, calls)()
    trainer = trainer_factory(callbacks=[HookRecorder("cb.", calls)], **OPTIONS)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(model)
    assert calls == FIT_RAISING
    assert calls[-1] == "cb.on_exception"


def test_trylast_epoch_end_implementations_run_after_the_models_hook(trainer_factory) -> None:
    calls: list[str] = []

    class Monitor(ember.Callback):
        @ember.hookimpl(trylast=True)
        def on_train_epoch_end(self, trainer, pl_module):
            calls.append("monitor")

    class Plain(ember.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            calls.append("plain")

    class Model(TinyModel):
        def on_train_epoch_end(self):
            calls.append("model")

    trainer_factory(callbacks=[Monitor(), Plain()], max_epochs=1, limit_train_batches=1).fit(Model())
    assert calls == ["plain", "model", "monitor"]
