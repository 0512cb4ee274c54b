"""Trainer(overfit_batches=N): train (and validate) on the same first N batches every epoch, as Lightning does."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, SequentialSampler, TensorDataset

from ember.errors import EmberWarning, MisconfigurationError
from ember.testing import TinyModel

SAMPLES = torch.arange(40, dtype=torch.float32).unsqueeze(1).repeat(1, 32)


class SeesBatches(TinyModel):
    """Records the first feature of each sample it trains and validates on."""

    def __init__(self, shuffle: bool = True):
        super().__init__()
        self.shuffle = shuffle
        self.trained: list[list[int]] = []
        self.validated: list[list[int]] = []

    def train_dataloader(self):
        return DataLoader(TensorDataset(SAMPLES, torch.zeros(40, 2)), batch_size=4, shuffle=self.shuffle)

    def val_dataloader(self):
        return DataLoader(TensorDataset(SAMPLES + 100, torch.zeros(40, 2)), batch_size=4, shuffle=self.shuffle)

    def on_train_epoch_start(self):
        self.trained.append([])

    def training_step(self, batch, batch_idx):
        self.trained[-1] += batch[0][:, 0].int().tolist()
        return super().training_step(batch, batch_idx)

    def on_validation_epoch_start(self):
        self.validated.append([])

    def validation_step(self, batch, batch_idx):
        self.validated[-1] += batch[0][:, 0].int().tolist()


def test_an_int_trains_on_the_same_first_batches_every_epoch(trainer_factory) -> None:
    model = SeesBatches()
    trainer = trainer_factory(overfit_batches=2, max_epochs=3, num_sanity_val_steps=0)
    with pytest.warns(EmberWarning, match="overfit but enabled train dataloader shuffling"):
        trainer.fit(model)
    assert trainer.num_training_batches == 2
    assert model.trained == [list(range(8))] * 3
    assert isinstance(trainer.train_dataloader.sampler, SequentialSampler)


def test_validation_uses_the_first_batches_of_the_validation_set_in_order(trainer_factory) -> None:
    model = SeesBatches()
    trainer = trainer_factory(overfit_batches=2, max_epochs=2, num_sanity_val_steps=0)
    with pytest.warns(EmberWarning):
        trainer.fit(model)
    assert trainer.num_val_batches == [2]
    assert model.validated == [list(range(100, 108))] * 2


def test_a_fraction_is_a_share_of_the_training_batches(trainer_factory) -> None:
    model = SeesBatches(shuffle=False)
    trainer = trainer_factory(overfit_batches=0.25, max_epochs=1, num_sanity_val_steps=0)
    trainer.fit(model)  # no shuffling, so no warning
    assert trainer.num_training_batches == 2  # a quarter of 10
    assert model.trained == [list(range(8))]


def test_test_and_predict_are_not_limited(trainer_factory) -> None:
    trainer = trainer_factory(overfit_batches=1)
    trainer.test(TinyModel(), verbose=False)
    assert trainer.num_test_batches == [4]


@pytest.mark.parametrize("bad", [-1, 1.5, "all"])
def test_a_bad_value_names_the_flag(trainer_factory, bad) -> None:
    with pytest.raises(MisconfigurationError, match=r"overfit_batches=.*accepted"):
        trainer_factory(overfit_batches=bad)
