"""StochasticWeightAveraging: Lightning's snapshot schedule, SWALR, batch-norm statistics, checkpoints and resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.optim.swa_utils import SWALR
from torch.utils.data import DataLoader

import ember
from ember.callbacks import StochasticWeightAveraging
from ember.errors import EmberWarning, MisconfigurationError
from ember.testing import CrashAfter as Crash
from ember.testing import TinyModel
from ember.testing.models import regression_data


def train_loader() -> DataLoader[Any]:
    """The tiny model's training data in a fixed order, so that two runs see the same batches."""
    return DataLoader(regression_data(64, 32, seed=0), batch_size=8)


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.named_parameters()}


class EpochStarts(ember.Callback):
    """The weights and learning rate each epoch starts with."""

    def __init__(self) -> None:
        self.weights: list[dict[str, torch.Tensor]] = []
        self.lrs: list[float] = []

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.weights.append(weights(pl_module))

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx == 0:
            self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


class WithScheduler(TinyModel):
    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.05)
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)]


class WithBatchNorm(TinyModel):
    def __init__(self) -> None:
        super().__init__()
        self.norm = torch.nn.BatchNorm1d(32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(self.norm(x))  # type: ignore[no-any-return]


def fit(trainer_factory: Any, callbacks: list[Any], model: Any = None, max_epochs: int = 5, **kwargs: Any) -> Any:
    torch.manual_seed(0)
    model = model if model is not None else TinyModel()
    trainer = trainer_factory(max_epochs=max_epochs, callbacks=callbacks, **kwargs)
    trainer.fit(model, train_dataloaders=train_loader())
    return model


def mean(snapshots: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {name: torch.stack([s[name] for s in snapshots]).mean(0) for name in snapshots[0]}


def assert_close(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for name in actual:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-5, atol=1e-6)


def assert_equal(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    assert all(torch.equal(actual[name], expected[name]) for name in actual)


# ------------------------------------------------------------------ schedule
def test_model_ends_with_the_mean_of_the_epoch_start_weights_from_swa_epoch_start(trainer_factory: Any) -> None:
    starts = EpochStarts()
    model = fit(trainer_factory, [starts, StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=2)])
    # swa_epoch_start=2 is epoch index 1: snapshots at the starts of epochs 1, 2, 3 and 4
    assert_close(weights(model), mean(starts.weights[1:]))


def test_fractional_swa_epoch_start_counts_from_max_epochs(trainer_factory: Any) -> None:
    starts = EpochStarts()
    callback = StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=0.6)
    model = fit(trainer_factory, [starts, callback])
    assert callback.swa_start == 2  # int(0.6 * 5) = 3, the third epoch
    assert int(callback.n_averaged) == 3
    assert_close(weights(model), mean(starts.weights[2:]))


def test_swalr_anneals_the_learning_rate_from_swa_epoch_start(trainer_factory: Any) -> None:
    starts = EpochStarts()
    callback = StochasticWeightAveraging(
        swa_lrs=0.01, swa_epoch_start=2, annealing_epochs=4, annealing_strategy="linear"
    )
    fit(trainer_factory, [starts, callback], max_epochs=6)
    # TinyModel's rate is 0.05; SWALR steps it a quarter of the way to 0.01 each epoch from the second one
    assert starts.lrs == pytest.approx([0.05, 0.05, 0.04, 0.03, 0.02, 0.01])


def test_cosine_annealing_reaches_the_swa_rate(trainer_factory: Any) -> None:
    starts = EpochStarts()
    callback = StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=1, annealing_epochs=2)
    fit(trainer_factory, [starts, callback], max_epochs=4)
    assert starts.lrs == pytest.approx([0.05, 0.03, 0.01, 0.01])


def test_swa_replaces_the_models_scheduler_when_it_starts(trainer_factory: Any) -> None:
    starts = EpochStarts()
    callback = StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=3, annealing_epochs=1)
    model = WithScheduler()
    trainer = trainer_factory(max_epochs=5, callbacks=[starts, callback])
    trainer.fit(model, train_dataloaders=train_loader())
    assert starts.lrs == pytest.approx([0.05, 0.025, 0.0125, 0.01, 0.01])
    assert len(trainer.lr_scheduler_configs) == 1
    assert isinstance(trainer.lr_scheduler_configs[0].scheduler, SWALR)


def test_custom_avg_fn_decides_how_snapshots_combine(trainer_factory: Any) -> None:
    starts = EpochStarts()

    def keep_latest(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        return current

    model = fit(
        trainer_factory, [starts, StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=2, avg_fn=keep_latest)]
    )
    assert_equal(weights(model), starts.weights[-1])


# ---------------------------------------------------------------- batch norm
def test_batch_norm_statistics_are_recomputed_for_the_averaged_weights(trainer_factory: Any) -> None:
    starts = EpochStarts()
    model = fit(trainer_factory, [starts, StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=2)], WithBatchNorm())
    assert_close(weights(model), mean(starts.weights[1:]))

    by_hand = WithBatchNorm()
    by_hand.load_state_dict(model.state_dict())
    torch.optim.swa_utils.update_bn(train_loader(), by_hand)
    torch.testing.assert_close(model.norm.running_mean, by_hand.norm.running_mean)
    torch.testing.assert_close(model.norm.running_var, by_hand.norm.running_var)
    assert int(model.norm.num_batches_tracked) == 8
    assert model.norm.momentum == 0.1
    assert model.training


def test_the_batch_norm_pass_logs_nothing(trainer_factory: Any) -> None:
    class Metrics(ember.Callback):
        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self.seen = (dict(trainer.callback_metrics), dict(trainer.logged_metrics))

    before, after = Metrics(), Metrics()
    callback = StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=1)
    fit(trainer_factory, [before, callback, after], WithBatchNorm(), max_epochs=2)
    assert int(callback.n_averaged) == 2
    assert before.seen == after.seen


# --------------------------------------------------------------- checkpoints
@pytest.mark.parametrize(
    ("crash", "model_class", "averaged"),
    [
        ({"epoch": 2}, TinyModel, 2),
        ({"step": 21}, TinyModel, 2),
        ({"epoch": 0}, WithScheduler, 0),
        ({"epoch": 2}, WithScheduler, 2),
        ({"step": 12}, WithScheduler, 1),
        ({"epoch": 1}, WithBatchNorm, 1),
    ],
    ids=[
        "during-swa",
        "mid-epoch",
        "before-swa-scheduler",
        "during-swa-scheduler",
        "mid-epoch-scheduler",
        "batch-norm",
    ],
)
def test_crash_and_resume_ends_with_the_same_weights_as_an_uninterrupted_run(
    trainer_factory: Any, tmp_path: Path, crash: dict[str, int], model_class: type[TinyModel], averaged: int
) -> None:
    def make() -> StochasticWeightAveraging:
        return StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=2, annealing_epochs=3)

    torch.manual_seed(0)
    expected = fit(trainer_factory, [make()], model_class())

    path = tmp_path / "crash.ckpt"
    torch.manual_seed(0)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(trainer_factory, [make(), Crash(path, **crash)], model_class())
    state = torch.load(path, weights_only=True)["callbacks"][make().state_key]
    assert state["n_averaged"] == averaged

    torch.manual_seed(1)  # a different initialisation: everything must come from the checkpoint
    model = model_class()
    trainer = trainer_factory(max_epochs=5, callbacks=[make()])
    trainer.fit(model, train_dataloaders=train_loader(), ckpt_path=path)
    assert_equal(weights(model), weights(expected))
    for name, buffer in expected.named_buffers():
        assert torch.equal(dict(model.named_buffers())[name], buffer)


def test_checkpoint_state_holds_the_average_and_the_scheduler(trainer_factory: Any, tmp_path: Path) -> None:
    starts, path = EpochStarts(), tmp_path / "crash.ckpt"
    callback = StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=2)
    with pytest.raises(RuntimeError):
        fit(trainer_factory, [starts, callback, Crash(path, epoch=2)])
    state = torch.load(path, weights_only=True)["callbacks"][callback.state_key]
    assert state["n_averaged"] == 2
    assert state["latest_update_epoch"] == 2
    assert_close(state["average_model_state"], mean(starts.weights[1:3]))
    assert state["scheduler_state"]["anneal_epochs"] == 10


# -------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"swa_lrs": 0.0}, "swa_lrs=0.0"),
        ({"swa_lrs": 1}, "swa_lrs=1"),
        ({"swa_lrs": [0.1, -0.1]}, r"swa_lrs=\[0.1, -0.1\]"),
        ({"swa_lrs": 0.1, "swa_epoch_start": 0}, "swa_epoch_start=0"),
        ({"swa_lrs": 0.1, "swa_epoch_start": 1.5}, "swa_epoch_start=1.5"),
        ({"swa_lrs": 0.1, "annealing_strategy": "step"}, "annealing_strategy='step'"),
        ({"swa_lrs": 0.1, "annealing_epochs": -1}, "annealing_epochs=-1"),
        ({"swa_lrs": 0.1, "avg_fn": "mean"}, "avg_fn='mean'"),
        ({"swa_lrs": 0.1, "device": 3.5}, "device=3.5"),
    ],
)
def test_bad_arguments_are_rejected_with_the_value_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(MisconfigurationError, match=message):
        StochasticWeightAveraging(**kwargs)


def test_two_optimizers_are_rejected_when_fit_starts(trainer_factory: Any) -> None:
    class TwoOptimizers(TinyModel):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False

        def configure_optimizers(self) -> Any:
            return [torch.optim.SGD(self.parameters(), lr=0.1), torch.optim.SGD(self.parameters(), lr=0.1)]

    trainer = trainer_factory(callbacks=[StochasticWeightAveraging(swa_lrs=0.01)])
    with pytest.raises(MisconfigurationError, match="1 optimizer"):
        trainer.fit(TwoOptimizers())


def test_fractional_start_needs_a_finite_max_epochs(trainer_factory: Any) -> None:
    trainer = trainer_factory(max_epochs=-1, max_steps=4, callbacks=[StochasticWeightAveraging(swa_lrs=0.01)])
    with pytest.raises(MisconfigurationError, match="give swa_epoch_start as an int"):
        trainer.fit(TinyModel())


def test_swa_lrs_list_must_match_the_parameter_groups(trainer_factory: Any) -> None:
    trainer = trainer_factory(callbacks=[StochasticWeightAveraging(swa_lrs=[0.01, 0.02], swa_epoch_start=1)])
    with pytest.raises(MisconfigurationError, match="2 values for an optimizer with 1 parameter groups"):
        trainer.fit(TinyModel())


def test_a_manually_optimized_model_gets_a_warning_instead_of_the_batch_norm_pass(trainer_factory: Any) -> None:
    class Manual(WithBatchNorm):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch: Any, batch_idx: int) -> None:
            optimizer = self.optimizers()
            optimizer.zero_grad()
            self.manual_backward(self._loss(batch))
            optimizer.step()

    starts = EpochStarts()
    with pytest.warns(EmberWarning, match="does not recompute batch-norm statistics"):
        model = fit(trainer_factory, [starts, StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=2)], Manual())
    assert_close(weights(model), mean(starts.weights[1:]))
