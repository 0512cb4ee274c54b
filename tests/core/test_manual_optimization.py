"""Manual optimization: the model steps its optimizers, the hooks still fire."""

from __future__ import annotations

import pytest
import torch

import ember
from ember.errors import MisconfigurationError
from ember.testing import HookRecorder, TinyModel


class TwoOptimizers(TinyModel):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.other = torch.nn.Linear(32, 2)

    def training_step(self, batch, batch_idx):
        first, second = self.optimizers()
        x, y = batch
        for optimizer, layer in ((first, self.layer), (second, self.other)):
            self.toggle_optimizer(optimizer)
            loss = torch.nn.functional.mse_loss(layer(x), y)
            optimizer.zero_grad()
            self.manual_backward(loss)
            self.clip_gradients(optimizer, gradient_clip_val=0.1)
            optimizer.step()
            self.untoggle_optimizer(optimizer)
        scheduler = self.lr_schedulers()
        scheduler.step()
        self.log("loss", loss)

    def configure_optimizers(self):
        first = torch.optim.SGD(self.layer.parameters(), lr=0.1)
        second = torch.optim.SGD(self.other.parameters(), lr=0.1)
        return [first, second], [torch.optim.lr_scheduler.StepLR(first, step_size=1, gamma=0.9)]


def test_two_optimizers_step_and_the_hooks_fire(trainer_factory) -> None:
    recorder = HookRecorder()
    model = TwoOptimizers()
    before_other = model.other.weight.detach().clone()
    trainer = trainer_factory(callbacks=[recorder], max_epochs=1, limit_train_batches=3)
    trainer.fit(model)
    assert trainer.global_step == 6  # every optimizer.step() counts, as in Lightning
    assert recorder.names("on_before_backward").count("on_before_backward") == 6
    assert recorder.names("on_after_backward").count("on_after_backward") == 6
    assert recorder.names("on_before_optimizer_step").count("on_before_optimizer_step") == 6
    assert not torch.equal(before_other, model.other.weight)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 0.9**3)


def test_manual_backward_needs_manual_optimization(trainer_factory) -> None:
    class Wrong(TinyModel):
        def training_step(self, batch, batch_idx):
            self.manual_backward(super().training_step(batch, batch_idx))

    with pytest.raises(MisconfigurationError, match="automatic_optimization = False"):
        trainer_factory(max_epochs=1).fit(Wrong())


def test_accumulation_and_clipping_flags_refuse_manual_optimization(trainer_factory) -> None:
    with pytest.raises(MisconfigurationError, match="accumulate_grad_batches=2.*manual"):
        trainer_factory(accumulate_grad_batches=2).fit(TwoOptimizers())
    with pytest.raises(MisconfigurationError, match="gradient_clip_val.*manual.*clip_gradients"):
        trainer_factory(gradient_clip_val=1.0).fit(TwoOptimizers())


def test_toggle_optimizer_freezes_the_other_parameters(trainer_factory) -> None:
    seen = []

    class Looks(TwoOptimizers):
        def training_step(self, batch, batch_idx):
            first, _ = self.optimizers()
            self.toggle_optimizer(first)
            seen.append((self.layer.weight.requires_grad, self.other.weight.requires_grad))
            self.untoggle_optimizer(first)
            seen.append((self.layer.weight.requires_grad, self.other.weight.requires_grad))

    trainer_factory(max_epochs=1, limit_train_batches=1).fit(Looks())
    assert seen == [(True, False), (True, True)]


def test_self_optimizers_is_the_stepping_wrapper(trainer_factory) -> None:
    seen = {}

    class Look(TinyModel):
        def on_train_start(self):
            optimizer = self.optimizers()
            seen["wrapped"] = optimizer.optimizer is self.trainer.optimizers[0]
            seen["lr"] = optimizer.param_groups[0]["lr"]

    trainer_factory(max_epochs=1, limit_train_batches=1).fit(Look())
    assert seen == {"wrapped": True, "lr": 0.05}
    assert isinstance(ember.Trainer, type)
