"""Stateful built-ins with different settings coexist: each one's state_key names its settings, as Lightning's do."""

from __future__ import annotations

import pytest
import torch

from ember.callbacks import (
    BackboneFinetuning,
    EarlyStopping,
    EMAWeightAveraging,
    ModelCheckpoint,
    ModelPruning,
    SpikeDetection,
    StochasticWeightAveraging,
    Timer,
    WeightAveraging,
)
from ember.testing import TinyModel

PAIRS = {
    "ModelPruning": lambda: (
        ModelPruning("l1_unstructured", amount=0.2),
        ModelPruning("random_unstructured", amount=0.1),
    ),
    "EarlyStopping": lambda: (EarlyStopping("val_loss"), EarlyStopping("train_loss")),
    "ModelCheckpoint": lambda: (ModelCheckpoint(monitor="val_loss"), ModelCheckpoint(every_n_epochs=2)),
    "SpikeDetection": lambda: (SpikeDetection(window=5), SpikeDetection(window=20)),
    "StochasticWeightAveraging": lambda: (StochasticWeightAveraging(0.01), StochasticWeightAveraging(0.02)),
    "Timer": lambda: (Timer(interval="step"), Timer(interval="epoch")),
    "WeightAveraging": lambda: (WeightAveraging(use_buffers=True), WeightAveraging(use_buffers=False)),
    "EMAWeightAveraging": lambda: (EMAWeightAveraging(decay=0.9), EMAWeightAveraging(decay=0.99)),
    "BackboneFinetuning": lambda: (BackboneFinetuning(2), BackboneFinetuning(5)),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_two_instances_with_different_settings_have_different_state_keys(trainer_factory, name) -> None:
    first, second = PAIRS[name]()
    assert first.state_key != second.state_key
    assert first.state_key.startswith(name + "{")
    trainer_factory(callbacks=[first, second])  # no "two stateful callbacks share the state_key" error


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_the_state_key_is_the_same_for_the_same_settings(name) -> None:
    assert PAIRS[name]()[0].state_key == PAIRS[name]()[0].state_key


def test_two_prunings_checkpoint_and_restore_their_own_state(trainer_factory, tmp_path) -> None:
    class TwoLayers(TinyModel):
        def __init__(self):
            super().__init__()
            self.extra = torch.nn.Linear(2, 2)

        def forward(self, x):
            return self.extra(self.layer(x))

    model = TwoLayers()
    layer = ModelPruning("l1_unstructured", parameters_to_prune=[(model.layer, "weight")], amount=0.5)
    extra = ModelPruning("l1_unstructured", parameters_to_prune=[(model.extra, "weight")], amount=0.25)
    saving = ModelCheckpoint(dirpath=tmp_path, filename="pruned")  # written during training, masks still on
    trainer = trainer_factory(callbacks=[layer, extra, saving], max_epochs=1, limit_train_batches=2)
    trainer.fit(model)
    saved = torch.load(tmp_path / "pruned.ckpt", weights_only=True)["callbacks"]
    assert set(saved[layer.state_key]["masks"]) == {"layer.weight"}
    assert set(saved[extra.state_key]["masks"]) == {"extra.weight"}


def test_a_checkpoint_keyed_by_class_name_still_restores(trainer_factory, tmp_path) -> None:
    """Checkpoints written before the key named the settings (and Lightning's, for most built-ins) still load."""
    spikes = SpikeDetection(window=10)
    trainer = trainer_factory(callbacks=[spikes], max_epochs=1, limit_train_batches=3)
    trainer.fit(TinyModel())
    path = tmp_path / "old.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["callbacks"] = {"SpikeDetection": checkpoint["callbacks"].pop(spikes.state_key)}
    torch.save(checkpoint, path)

    restored = SpikeDetection(window=10)
    trainer_factory(callbacks=[restored]).validate(TinyModel(), ckpt_path=path, verbose=False)
    assert restored.state_dict()["running"] == pytest.approx(spikes.state_dict()["running"])


def test_a_single_callback_restores_its_state_saved_under_other_settings(trainer_factory, tmp_path) -> None:
    spikes = SpikeDetection(window=10)
    trainer = trainer_factory(callbacks=[spikes], max_epochs=1, limit_train_batches=3)
    trainer.fit(TinyModel())
    trainer.save_checkpoint(tmp_path / "saved.ckpt")
    restored = SpikeDetection(window=12)
    trainer_factory(callbacks=[restored]).validate(TinyModel(), ckpt_path=tmp_path / "saved.ckpt", verbose=False)
    assert restored.state_dict()["running"] == pytest.approx(spikes.state_dict()["running"])
