"""WeightAveraging and EMAWeightAveraging: the averages they keep, validation on them, checkpoints and resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

import ember
from ember.callbacks import EMAWeightAveraging, WeightAveraging
from ember.errors import EmberWarning, MisconfigurationError
from ember.testing import CrashAfter as Crash
from ember.testing import TinyModel
from ember.testing.models import regression_data


def train_loader() -> DataLoader[Any]:
    """The tiny model's training data in a fixed order, so that two runs see the same batches."""
    return DataLoader(regression_data(64, 32, seed=0), batch_size=8)


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


class Snapshots(ember.Callback):
    """The live weights after every optimizer step and at every epoch end."""

    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []
        self.epoch_ends: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.steps.append(weights(pl_module))

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self.epoch_ends.append(weights(pl_module))


def mean(snapshots: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {name: torch.stack([s[name] for s in snapshots]).mean(0) for name in snapshots[0]}


def ema(snapshots: list[dict[str, torch.Tensor]], decay: float) -> dict[str, torch.Tensor]:
    average = dict(snapshots[0])
    for snapshot in snapshots[1:]:
        average = {name: decay * average[name] + (1 - decay) * snapshot[name] for name in average}
    return average


def assert_close(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for name in actual:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-5, atol=1e-6)


def fit(
    trainer_factory: Any, callbacks: list[Any], max_epochs: int = 2, model: TinyModel | None = None, **kwargs: Any
) -> TinyModel:
    torch.manual_seed(0)
    model = model if model is not None else TinyModel()
    trainer = trainer_factory(max_epochs=max_epochs, callbacks=callbacks, **kwargs)
    trainer.fit(model, train_dataloaders=train_loader())
    return model


# ------------------------------------------------------------------ averages
def test_default_average_is_the_mean_of_the_weights_after_every_step(trainer_factory: Any) -> None:
    snapshots = Snapshots()
    model = fit(trainer_factory, [snapshots, WeightAveraging()])
    assert len(snapshots.steps) == 16
    assert_close(weights(model), mean(snapshots.steps))


def test_ema_equals_the_moving_average_computed_by_hand(trainer_factory: Any) -> None:
    snapshots = Snapshots()
    model = fit(trainer_factory, [snapshots, EMAWeightAveraging(decay=0.8)])
    assert_close(weights(model), ema(snapshots.steps, 0.8))


def test_ema_updates_every_n_steps_from_the_starting_step(trainer_factory: Any) -> None:
    snapshots = Snapshots()
    callback = EMAWeightAveraging(decay=0.5, update_every_n_steps=3, update_starting_at_step=4)
    model = fit(trainer_factory, [snapshots, callback])
    chosen = [snapshots.steps[index] for index in (6, 9, 12, 15)]  # zero-based step indices
    assert_close(weights(model), ema(chosen, 0.5))
    assert int(callback.average_model.n_averaged) == 4


def test_ema_updates_at_epoch_ends_from_the_starting_epoch(trainer_factory: Any) -> None:
    snapshots = Snapshots()
    callback = EMAWeightAveraging(decay=0.5, update_every_n_steps=0, update_starting_at_epoch=1)
    model = fit(trainer_factory, [snapshots, callback], max_epochs=3)
    assert_close(weights(model), ema(snapshots.epoch_ends[1:], 0.5))


def test_should_update_chooses_when_to_average(trainer_factory: Any) -> None:
    class EveryEpoch(WeightAveraging):
        def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
            return epoch_idx is not None

    snapshots = Snapshots()
    model = fit(trainer_factory, [snapshots, EveryEpoch()], max_epochs=3)
    assert_close(weights(model), mean(snapshots.epoch_ends))


def test_average_lives_on_the_requested_device(trainer_factory: Any) -> None:
    callback = WeightAveraging(device="cpu")
    fit(trainer_factory, [callback], max_epochs=1)
    assert all(t.device.type == "cpu" for t in callback.average_model.parameters())


def test_a_model_built_in_configure_model_is_averaged_whole(trainer_factory: Any) -> None:
    class Lazy(TinyModel):
        def configure_model(self) -> None:
            if not hasattr(self, "extra"):
                self.extra = torch.nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.extra(self.layer(x))  # type: ignore[no-any-return]

    snapshots, callback = Snapshots(), WeightAveraging()
    with pytest.warns(EmberWarning, match="calls configure_model"):
        model = fit(trainer_factory, [snapshots, callback], model=Lazy())
    assert "extra.weight" in callback.average_model.module.state_dict()
    assert_close(weights(model), mean(snapshots.steps))


# ---------------------------------------------------------------- validation
class ValidationRecorder(TinyModel):
    """Remembers the weights validation ran with and the live weights before and after it."""

    def __init__(self, fail_in_epoch: int | None = None) -> None:
        super().__init__()
        self.fail_in_epoch = fail_in_epoch
        self.validated_with: list[dict[str, torch.Tensor]] = []
        self.before_validation: list[dict[str, torch.Tensor]] = []
        self.after_validation: list[dict[str, torch.Tensor]] = []

    def on_validation_start(self) -> None:
        self.before_validation.append(weights(self))

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        if batch_idx == 0:
            self.validated_with.append(weights(self))
        if self.current_epoch == self.fail_in_epoch:
            raise RuntimeError("validation failed")
        super().validation_step(batch, batch_idx)

    def on_validation_end(self) -> None:
        self.after_validation.append(weights(self))


def test_validation_runs_on_the_average_and_training_goes_on_with_the_live_weights(trainer_factory: Any) -> None:
    torch.manual_seed(0)
    model, snapshots = ValidationRecorder(), Snapshots()
    trainer = trainer_factory(max_epochs=2, num_sanity_val_steps=0, callbacks=[snapshots, WeightAveraging()])
    trainer.fit(model, train_dataloaders=train_loader())
    assert len(model.validated_with) == 2
    for epoch, validated in enumerate(model.validated_with):
        assert_close(validated, mean(snapshots.steps[: 8 * (epoch + 1)]))
        live = snapshots.steps[8 * epoch + 7]
        assert all(torch.equal(model.before_validation[epoch][k], live[k]) for k in live)
        assert all(torch.equal(model.after_validation[epoch][k], live[k]) for k in live)
        assert not torch.equal(validated["layer.weight"], live["layer.weight"])


def test_live_weights_come_back_when_validation_raises(trainer_factory: Any) -> None:
    torch.manual_seed(0)
    model, snapshots = ValidationRecorder(fail_in_epoch=1), Snapshots()
    trainer = trainer_factory(max_epochs=3, num_sanity_val_steps=0, callbacks=[snapshots, WeightAveraging()])
    with pytest.raises(RuntimeError, match="validation failed"):
        trainer.fit(model, train_dataloaders=train_loader())
    live = snapshots.steps[-1]
    assert all(torch.equal(weights(model)[k], live[k]) for k in live)


# --------------------------------------------------------------- checkpoints
def test_checkpoint_holds_the_average_as_state_dict_and_the_live_weights_beside_it(
    trainer_factory: Any, tmp_path: Path
) -> None:
    snapshots, path = Snapshots(), tmp_path / "crash.ckpt"
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(trainer_factory, [snapshots, WeightAveraging(), Crash(path, epoch=0)])
    checkpoint = torch.load(path, weights_only=True)
    assert_close(checkpoint["state_dict"], mean(snapshots.steps))
    assert_close(checkpoint["current_model_state"], snapshots.steps[-1])
    assert set(checkpoint["averaging_state"]) == {"n_averaged"}
    assert int(checkpoint["averaging_state"]["n_averaged"]) == 8
    assert checkpoint["callbacks"][WeightAveraging().state_key] == {"latest_update_step": 8, "latest_update_epoch": -1}


def test_checkpoint_saved_during_validation_has_the_same_layout(trainer_factory: Any, tmp_path: Path) -> None:
    class SaveInValidation(ember.Callback):
        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if not trainer.sanity_checking and trainer.current_epoch == 0:
                trainer.save_checkpoint(tmp_path / "validation.ckpt")

    snapshots = Snapshots()
    fit(trainer_factory, [snapshots, SaveInValidation(), WeightAveraging()], max_epochs=1)
    checkpoint = torch.load(tmp_path / "validation.ckpt", weights_only=True)
    assert_close(checkpoint["state_dict"], mean(snapshots.steps))
    assert_close(checkpoint["current_model_state"], snapshots.steps[-1])


@pytest.mark.parametrize("crash", [{"epoch": 1}, {"step": 13}], ids=["epoch-end", "mid-epoch"])
@pytest.mark.parametrize(
    "make_callback",
    [WeightAveraging, lambda: EMAWeightAveraging(decay=0.7, update_every_n_steps=2, update_starting_at_epoch=2)],
    ids=["swa", "ema"],
)
def test_crash_and_resume_ends_with_the_same_average_as_an_uninterrupted_run(
    trainer_factory: Any, tmp_path: Path, make_callback: Any, crash: dict[str, int]
) -> None:
    whole = make_callback()
    expected = fit(trainer_factory, [whole], max_epochs=4)

    path = tmp_path / "crash.ckpt"
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(trainer_factory, [make_callback(), Crash(path, **crash)], max_epochs=4)
    torch.manual_seed(1)  # a different initialisation: everything must come from the checkpoint
    model, resumed = TinyModel(), make_callback()
    trainer = trainer_factory(max_epochs=4, callbacks=[resumed])
    trainer.fit(model, train_dataloaders=train_loader(), ckpt_path=path)

    assert trainer.global_step == 32
    assert all(torch.equal(weights(model)[k], v) for k, v in weights(expected).items())
    assert all(
        torch.equal(a, b)
        for a, b in zip(whole.average_model.state_dict().values(), resumed.average_model.state_dict().values())
    )


def test_validate_from_a_weight_averaging_checkpoint_uses_the_average(trainer_factory: Any, tmp_path: Path) -> None:
    snapshots, path = Snapshots(), tmp_path / "crash.ckpt"
    with pytest.raises(RuntimeError):
        fit(trainer_factory, [snapshots, WeightAveraging(), Crash(path, epoch=0)])
    model = TinyModel()
    trainer = trainer_factory(callbacks=[WeightAveraging()])
    with pytest.warns(EmberWarning, match="outside fit"):
        trainer.validate(model, ckpt_path=path, verbose=False)
    assert_close(weights(model), mean(snapshots.steps))


def test_resuming_from_a_plain_checkpoint_starts_both_models_from_it(trainer_factory: Any, tmp_path: Path) -> None:
    trainer = trainer_factory(max_epochs=1)
    trainer.fit(TinyModel(), train_dataloaders=train_loader())
    path = tmp_path / "plain.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)["state_dict"]

    class Nothing(WeightAveraging):
        def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
            return False

    callback = Nothing()
    trainer = trainer_factory(max_epochs=2, callbacks=[callback])
    with pytest.warns(EmberWarning, match="not saved with Nothing"):
        trainer.fit(TinyModel(), train_dataloaders=train_loader(), ckpt_path=path)
    assert all(torch.equal(callback.average_model.module.state_dict()[k], v) for k, v in saved.items())


# -------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: WeightAveraging(decay=0.9), "unknown keyword arguments"),
        (lambda: WeightAveraging(avg_fn=lambda *a: a[0], multi_avg_fn=lambda *a: None), "not both"),
        (lambda: WeightAveraging(avg_fn=3), "callable"),
        (lambda: EMAWeightAveraging(decay=1.5), "decay=1.5"),
        (lambda: EMAWeightAveraging(update_every_n_steps=-1), "update_every_n_steps=-1"),
        (lambda: EMAWeightAveraging(update_starting_at_epoch=1.5), "update_starting_at_epoch=1.5"),
    ],
)
def test_bad_arguments_are_rejected_with_the_value_named(make: Any, message: str) -> None:
    with pytest.raises(MisconfigurationError, match=message):
        make()
