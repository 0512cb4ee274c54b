"""seed_everything: the same seed gives the same numbers, in the main process and in dataloader workers."""

from __future__ import annotations

import random

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import ember
from ember.testing import TinyModel


def test_seed_everything_returns_the_seed_and_repeats_random_draws() -> None:
    assert ember.seed_everything(42) == 42
    first = (random.random(), torch.rand(3))
    ember.seed_everything(42)
    second = (random.random(), torch.rand(3))
    assert first[0] == second[0] and torch.equal(first[1], second[1])


def test_a_bad_seed_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="seed_everything\\(-1\\).*between 0 and"):
        ember.seed_everything(-1)


class RandomInWorkers(Dataset):
    """Each item is a draw from Python's random module in the worker that loads it."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.tensor([random.random()])


def test_workers_true_seeds_dataloader_workers_reproducibly(trainer_factory) -> None:
    def draws() -> list[float]:
        ember.seed_everything(3, workers=True)
        seen: list[float] = []

        class Model(TinyModel):
            def train_dataloader(self):
                return DataLoader(RandomInWorkers(), batch_size=2, num_workers=2)

            def training_step(self, batch, batch_idx):
                seen.extend(batch.flatten().tolist())
                return self.layer.weight.sum() * 0

        trainer_factory(max_epochs=1, limit_val_batches=0).fit(Model())
        return seen

    first, second = draws(), draws()
    assert len(first) == 8 and first == second
    assert len(set(first)) == 8  # workers draw different numbers
