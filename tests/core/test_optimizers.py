"""Every return form of configure_optimizers, and when schedulers step."""

from __future__ import annotations

import pytest
import torch

from ember.errors import MisconfigurationError
from ember.testing import TinyModel


def model_returning(make) -> TinyModel:
    class Model(TinyModel):
        def configure_optimizers(self):
            return make(self)

    return Model()


def sgd(model: TinyModel, lr: float = 0.1) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=lr)


@pytest.mark.parametrize(
    "form",
    [
        lambda m: sgd(m),
        lambda m: [sgd(m)],
        lambda m: ([sgd(m)], []),
        lambda m: {"optimizer": sgd(m)},
        lambda m: [{"optimizer": sgd(m)}],
    ],
    ids=["optimizer", "list", "two-lists", "dict", "list-of-dicts"],
)
def test_single_optimizer_forms(trainer_factory, form) -> None:
    trainer = trainer_factory(max_epochs=1)
    trainer.fit(model_returning(form))
    assert len(trainer.optimizers) == 1 and trainer.global_step == 8


class RecordsLR(TinyModel):
    def __init__(self, make) -> None:
        super().__init__()
        self.make, self.lrs = make, []

    def configure_optimizers(self):
        return self.make(self)

    def on_train_batch_start(self, batch, batch_idx):
        self.lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])


def test_epoch_scheduler_steps_once_per_epoch(trainer_factory) -> None:
    def make(m):
        optimizer = sgd(m, 1.0)
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)]

    model = RecordsLR(make)
    trainer_factory(max_epochs=3, limit_train_batches=2).fit(model)
    assert model.lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_step_scheduler_with_frequency(trainer_factory) -> None:
    def make(m):
        optimizer = sgd(m, 1.0)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 2}}

    model = RecordsLR(make)
    trainer_factory(max_epochs=1, limit_train_batches=6).fit(model)
    assert model.lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert model.trainer.lr_scheduler_configs[0].interval == "step"


def test_reduce_on_plateau_steps_on_its_monitored_metric(trainer_factory) -> None:
    class Plateau(RecordsLR):
        def validation_step(self, batch, batch_idx):
            self.log("constant", 1.0)

    def make(m):
        optimizer = sgd(m, 1.0)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, factor=0.1)
        return {"optimizer": optimizer, "lr_scheduler": scheduler, "monitor": "constant"}

    model = Plateau(make)
    trainer_factory(max_epochs=3, limit_train_batches=1, num_sanity_val_steps=0).fit(model)
    assert model.lrs == pytest.approx([1.0, 1.0, 0.1])


def test_reduce_on_plateau_without_the_metric_lists_available_metrics(trainer_factory) -> None:
    def make(m):
        optimizer = sgd(m)
        return {
            "optimizer": optimizer,
            "lr_scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer),
            "monitor": "nope",
        }

    with pytest.raises(MisconfigurationError, match="'nope'.*available metrics are: \\['train_loss', 'val_loss'\\]"):
        trainer_factory(max_epochs=1, limit_train_batches=1, num_sanity_val_steps=0).fit(model_returning(make))


def test_reduce_on_plateau_without_a_monitor_key_is_an_error(trainer_factory) -> None:
    def make(m):
        optimizer = sgd(m)
        return [optimizer], [torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)]

    with pytest.raises(MisconfigurationError, match="ReduceLROnPlateau needs a metric to monitor"):
        trainer_factory().fit(model_returning(make))


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (lambda m: [sgd(m), sgd(m)], "several optimizers need manual optimization"),
        (lambda m: "adam", "accepted forms are"),
        (lambda m: {"optimiser": sgd(m)}, "accepted keys are"),
        (lambda m: {"optimizer": sgd(m), "lr_scheduler": {"scheduler": None, "interval": "batch"}}, '"interval"'),
    ],
)
def test_bad_forms_are_clear_errors(trainer_factory, form, message) -> None:
    with pytest.raises(MisconfigurationError, match=message):
        trainer_factory().fit(model_returning(form))


def test_lbfgs_gets_the_closure_and_may_call_it_several_times(trainer_factory) -> None:
    calls: list[int] = []

    class Model(TinyModel):
        def training_step(self, batch, batch_idx):
            calls.append(batch_idx)
            return super().training_step(batch, batch_idx)

        def configure_optimizers(self):
            return torch.optim.LBFGS(self.parameters(), lr=0.1, max_iter=3)

    trainer = trainer_factory(max_epochs=1, limit_train_batches=2)
    trainer.fit(Model())
    assert trainer.global_step == 2
    assert len(calls) > 2 and set(calls) == {0, 1}


def test_an_optimizer_subclass_receives_the_closure(trainer_factory) -> None:
    received = []

    class MySGD(torch.optim.SGD):
        def step(self, closure=None):
            received.append(closure is not None)
            return super().step(closure)

    trainer = trainer_factory(max_epochs=1, limit_train_batches=2)
    trainer.fit(model_returning(lambda m: MySGD(m.parameters(), lr=0.1)))
    assert received == [True, True]


def test_fit_trains_even_when_called_under_no_grad(trainer_factory, tiny_model) -> None:
    before = tiny_model.layer.weight.detach().clone()
    with torch.no_grad():
        trainer_factory(max_epochs=1).fit(tiny_model)
    assert not torch.equal(before, tiny_model.layer.weight)


def test_the_plain_step_gives_the_same_weights_as_the_closure_path(trainer_factory) -> None:
    import ember

    results = []
    # gradient clipping makes the loop take its full path (the closure)
    for clip in (False, True):
        ember.seed_everything(3)
        model = TinyModel()
        trainer = trainer_factory(max_epochs=2, gradient_clip_val=1e9 if clip else None)
        trainer.fit(model)
        assert (trainer._optimization._plain_step is None) == clip  # each run took the path meant
        results.append((trainer.global_step, [p.detach().clone() for p in model.parameters()]))
    (steps, plain), (hooked_steps, hooked) = results
    assert steps == hooked_steps == 16
    assert all(torch.equal(a, b) for a, b in zip(plain, hooked))


class GradsAtTrainingStep(TinyModel):
    """Notes, at each training_step, whether the parameters still hold the last step's gradients."""

    def __init__(self) -> None:
        super().__init__()
        self.stale = []

    def training_step(self, batch, batch_idx):
        self.stale.append(all(p.grad is not None for p in self.parameters()))
        return super().training_step(batch, batch_idx)

    def on_before_backward(self, loss):
        assert all(p.grad is None for p in self.parameters())  # cleared before backward, as zero_grad() does


def test_gradients_are_cleared_after_training_step_as_zero_grad_clears_them(trainer_factory) -> None:
    model = GradsAtTrainingStep()
    trainer_factory(max_epochs=1, limit_train_batches=3).fit(model)
    # Lightning's order: training_step still sees the previous step's gradients; zero_grad comes after it
    assert model.stale == [False, True, True]


def test_an_optimizer_with_its_own_zero_grad_gets_it_called(trainer_factory) -> None:
    calls = []

    class MySGD(torch.optim.SGD):
        def zero_grad(self, set_to_none=True):
            calls.append(set_to_none)
            super().zero_grad(set_to_none)

    trainer_factory(max_epochs=1, limit_train_batches=2).fit(model_returning(lambda m: MySGD(m.parameters(), lr=0.1)))
    assert calls == [True, True]


def test_a_running_profiler_sees_zero_grad_s_range(trainer_factory) -> None:
    from torch.profiler import ProfilerActivity, profile

    trainer = trainer_factory(max_epochs=1, limit_train_batches=2)
    with profile(activities=[ProfilerActivity.CPU]) as recorded:
        trainer.fit(model_returning(sgd))
    names = [event.name for event in recorded.events()]
    assert names.count("Optimizer.zero_grad#SGD.zero_grad") == 2


def test_a_zero_grad_patched_onto_torch_s_optimizer_is_called(trainer_factory, monkeypatch) -> None:
    calls = []
    original = torch.optim.Optimizer.zero_grad

    def counting(self, set_to_none=True):
        calls.append(type(self).__name__)
        original(self, set_to_none)

    monkeypatch.setattr(torch.optim.Optimizer, "zero_grad", counting)
    trainer_factory(max_epochs=1, limit_train_batches=2).fit(model_returning(sgd))
    assert calls == ["SGD", "SGD"]
