"""Trainers and fitted Modules pickle and deep-copy, before and after fit, as Lightning's do."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

import ember
from ember.callbacks import EarlyStopping, ModelCheckpoint
from ember.testing import TinyModel


def pickled(value):
    return pickle.loads(pickle.dumps(value))


class WithExampleProperty(TinyModel):
    @property
    def example_input_array(self):
        return torch.zeros(4, 32)


def test_a_read_only_example_input_array_property_is_allowed(trainer_factory, capsys) -> None:
    model = WithExampleProperty()
    assert model.example_input_array.shape == (4, 32)
    trainer_factory(enable_model_summary=True, max_epochs=1, limit_train_batches=1).fit(model)
    assert "[4, 32]" in capsys.readouterr().out  # the summary's in sizes come from it


def test_example_input_array_can_be_assigned_in_init() -> None:
    class Assigns(TinyModel):
        def __init__(self):
            super().__init__()
            self.example_input_array = torch.ones(1, 32)

    assert torch.equal(Assigns().example_input_array, torch.ones(1, 32))


def make_trainer(tmp_path) -> ember.Trainer:
    return ember.Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=2,
        enable_progress_bar=True,
        callbacks=[ModelCheckpoint(monitor="val_loss"), EarlyStopping("val_loss", patience=5)],
    )


@pytest.mark.parametrize("duplicate", [pickled, copy.deepcopy], ids=["pickle", "deepcopy"])
def test_a_trainer_before_fit_duplicates_and_the_copy_trains(tmp_path, duplicate) -> None:
    trainer = duplicate(make_trainer(tmp_path))
    assert [type(c).__name__ for c in trainer.callbacks][-1] == "ModelCheckpoint"
    trainer.fit(TinyModel())
    assert trainer.global_step == 4
    assert trainer.checkpoint_callback.best_model_path


@pytest.mark.parametrize("duplicate", [pickled, copy.deepcopy], ids=["pickle", "deepcopy"])
def test_a_trainer_after_fit_duplicates_with_its_state(tmp_path, duplicate) -> None:
    trainer = make_trainer(tmp_path)
    trainer.fit(TinyModel())
    copied = duplicate(trainer)
    assert copied.global_step == trainer.global_step == 4
    assert copied.checkpoint_callback.best_model_path == trainer.checkpoint_callback.best_model_path
    assert copied.early_stopping_callback.wait_count == trainer.early_stopping_callback.wait_count
    assert float(copied.callback_metrics["val_loss"]) == float(trainer.callback_metrics["val_loss"])
    copied.validate(TinyModel(), verbose=False)  # the copy's plugin manager works


def test_a_deep_copied_trainer_has_its_own_callbacks(tmp_path) -> None:
    trainer = make_trainer(tmp_path)
    copied = copy.deepcopy(trainer)
    assert copied.checkpoint_callback is not trainer.checkpoint_callback
    assert copied.plugin_manager is not trainer.plugin_manager
    registered = [p for _, p, _ in copied.plugin_manager.implementations("on_validation_end")]
    assert copied.checkpoint_callback in registered


@pytest.mark.parametrize("duplicate", [pickled, copy.deepcopy], ids=["pickle", "deepcopy"])
def test_a_fitted_module_duplicates_with_its_weights(trainer_factory, duplicate) -> None:
    model = TinyModel()
    trainer_factory(callbacks=[ModelCheckpoint()], max_epochs=1).fit(model)
    copied = duplicate(model)
    assert torch.equal(copied.layer.weight, model.layer.weight)
    assert copied._trainer is None
