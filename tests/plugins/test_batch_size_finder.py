"""BatchSizeFinder: the batch size found, where it is written, and a run left as it was found.

Out-of-memory is real behaviour of the model here: it raises
``torch.OutOfMemoryError`` (what CUDA raises) for batches above a chosen size.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

import ember
from ember.callbacks import BatchSizeFinder
from ember.errors import EmberWarning, MisconfigurationError
from ember.testing.models import regression_data

OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


class Sized(ember.Module):
    """Linear regression whose dataloaders read ``self.batch_size``; batches above ``fits`` run out of memory."""

    def __init__(self, batch_size: int = 2, fits: int | None = None, samples: int = 256):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(32, 2)
        self.batch_size, self.fits, self.samples = batch_size, fits, samples
        self.tried: list[int] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        self.tried.append(len(x))
        if self.fits is not None and len(x) > self.fits:
            raise OOM(f"CUDA out of memory. Tried to allocate {len(x)} samples' worth (simulated)")
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(regression_data(self.samples, 32, seed=0), batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(regression_data(64, 32, seed=1), batch_size=self.batch_size)


class BatchSizes(ember.Callback):
    """The batch sizes of the real run (callbacks do not run during the finder's trials)."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.at_fit_start: Any = None

    def on_fit_start(self, trainer, pl_module) -> None:
        self.at_fit_start = pl_module.batch_size

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.sizes.append(len(batch[0]))


def find(trainer_factory, finder: BatchSizeFinder, model: ember.Module, **kwargs: Any) -> BatchSizes:
    sizes = BatchSizes()
    options = {"max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 0, **kwargs}
    trainer_factory(callbacks=[sizes, finder], **options).fit(model)
    return sizes


def test_power_mode_from_2_with_4_trials_reports_16_when_nothing_runs_out_of_memory(trainer_factory) -> None:
    finder = BatchSizeFinder(mode="power", init_val=2, max_trials=4)
    model = Sized()
    sizes = find(trainer_factory, finder, model)
    assert finder.optimal_batch_size == 16
    assert model.batch_size == 16
    assert sizes.at_fit_start == 16  # ran before the other callbacks' on_fit_start, though listed after them
    assert sizes.sizes == [16, 16]
    assert model.tried[:12] == [2] * 3 + [4] * 3 + [8] * 3 + [16] * 3  # steps_per_trial=3 steps per trial


def test_power_mode_keeps_the_last_size_that_fit(trainer_factory) -> None:
    finder = BatchSizeFinder(mode="power", steps_per_trial=1)
    model = Sized(fits=40)
    find(trainer_factory, finder, model)
    assert finder.optimal_batch_size == 32
    assert model.tried[:6] == [2, 4, 8, 16, 32, 64]


def test_power_mode_halves_until_a_size_fits_when_the_first_does_not(trainer_factory) -> None:
    finder = BatchSizeFinder(mode="power", steps_per_trial=1, init_val=64, max_trials=3)
    model = Sized(fits=20)
    find(trainer_factory, finder, model)
    assert model.tried[:3] == [64, 32, 16]
    assert finder.optimal_batch_size == 16


@pytest.mark.parametrize(("margin", "expected"), [(0.0, 24), (0.05, 22)])
def test_binsearch_bisects_between_the_last_fit_and_the_first_failure(trainer_factory, margin, expected) -> None:
    finder = BatchSizeFinder(mode="binsearch", steps_per_trial=1, margin=margin)
    model = Sized(fits=24)
    find(trainer_factory, finder, model)
    assert model.tried[:9] == [2, 4, 8, 16, 32, 24, 28, 26, 25]
    assert finder.optimal_batch_size == expected
    assert model.batch_size == expected


def test_max_val_and_the_dataset_size_bound_the_search(trainer_factory) -> None:
    capped = BatchSizeFinder(steps_per_trial=1, max_val=12)
    find(trainer_factory, capped, Sized())
    assert capped.optimal_batch_size == 12
    whole = BatchSizeFinder(steps_per_trial=1)
    model = Sized(samples=48)
    find(trainer_factory, whole, model)
    assert whole.optimal_batch_size == 64
    assert model.tried == [2, 4, 8, 16, 32, 48, 48]  # size 64 of 48 samples: one batch of everything; no 128


def test_the_size_goes_to_the_datamodule_that_builds_the_loaders(trainer_factory, tiny_datamodule) -> None:
    finder = BatchSizeFinder(steps_per_trial=1, max_trials=3)
    trainer = trainer_factory(callbacks=[finder], max_epochs=1, limit_train_batches=1)
    trainer.fit(ember.testing.TinyModel(), datamodule=tiny_datamodule)
    assert finder.optimal_batch_size == tiny_datamodule.batch_size == 8


def test_hparams_hold_the_batch_size_too(trainer_factory) -> None:
    class FromHparams(Sized):
        def __init__(self, batch_size: int = 2) -> None:
            super().__init__()
            del self.batch_size
            self.save_hyperparameters()

        def train_dataloader(self) -> DataLoader[Any]:
            return DataLoader(regression_data(256, 32), batch_size=self.hparams.batch_size)

    model = FromHparams()
    finder = BatchSizeFinder(steps_per_trial=1, max_trials=2)
    trainer_factory(callbacks=[finder], max_epochs=1, limit_train_batches=1, limit_val_batches=0).fit(model)
    assert model.hparams.batch_size == finder.optimal_batch_size == 4


def test_the_run_after_the_search_is_the_run_without_it(trainer_factory) -> None:
    """Weights, optimizer state, random state, global_step, limits and other callbacks' state are put back."""

    class Counter(ember.Callback):
        def __init__(self) -> None:
            self.batches = 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.batches += 1

        def state_dict(self) -> dict[str, int]:
            return {"batches": self.batches}

    results = []
    for finder in (BatchSizeFinder(init_val=16, max_trials=1, steps_per_trial=4), None):
        torch.manual_seed(1)
        counter = Counter()
        model = Sized(batch_size=16)
        callbacks = [counter] + ([finder] if finder else [])
        trainer = trainer_factory(callbacks=callbacks, max_epochs=2, limit_train_batches=5, limit_val_batches=0)
        trainer.fit(model)
        assert (trainer.limit_train_batches, trainer.max_steps, trainer.global_step) == (5, -1, 10)
        assert counter.batches == 10
        results.append([p.detach().clone() for p in model.parameters()])
    for searched, plain in zip(*results):
        assert torch.equal(searched, plain)


def test_a_failing_search_restores_the_weights_leaves_no_file_and_raises_the_error(trainer_factory, tmp_path) -> None:
    class Broken(Sized):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            loss = super().training_step(batch, batch_idx)
            if len(batch[0]) == 8:
                raise ValueError("not a memory problem")
            return loss

    model = Broken()
    before = [p.detach().clone() for p in model.parameters()]
    trainer = trainer_factory(callbacks=[BatchSizeFinder(steps_per_trial=1)])
    with pytest.raises(ValueError, match="not a memory problem"):
        trainer.fit(model)
    assert list(tmp_path.rglob("*")) == []
    for weight, original in zip(model.parameters(), before):
        assert torch.equal(weight, original)
    assert trainer.global_step == 0


def test_even_batch_size_1_running_out_of_memory_raises_it(trainer_factory) -> None:
    trainer = trainer_factory(callbacks=[BatchSizeFinder(steps_per_trial=1, init_val=4)])
    with pytest.raises(OOM, match="out of memory"):
        trainer.fit(Sized(fits=0))


def test_dataloaders_passed_to_fit_cannot_be_resized(trainer_factory) -> None:
    trainer = trainer_factory(callbacks=[BatchSizeFinder()])
    with pytest.raises(MisconfigurationError, match="passed to fit"):
        trainer.fit(Sized(), train_dataloaders=DataLoader(regression_data(64, 32), batch_size=4))


def test_a_missing_batch_size_attribute_is_named(trainer_factory) -> None:
    trainer = trainer_factory(callbacks=[BatchSizeFinder(batch_arg_name="bs")])
    with pytest.raises(MisconfigurationError, match=r"batch_arg_name='bs'.*no such attribute"):
        trainer.fit(Sized())


def test_an_attribute_and_a_hyperparameter_of_the_same_name_warn(trainer_factory) -> None:
    class Both(Sized):
        def __init__(self, batch_size: int = 2) -> None:
            super().__init__(batch_size)
            self.save_hyperparameters()

    finder = BatchSizeFinder(steps_per_trial=1, max_trials=2)
    trainer = trainer_factory(callbacks=[finder], max_epochs=1, limit_train_batches=1, limit_val_batches=0)
    model = Both()
    with pytest.warns(EmberWarning, match="model.batch_size and model.hparams.batch_size"):
        trainer.fit(model)
    assert model.batch_size == model.hparams.batch_size == 4


def test_fast_dev_run_skips_the_search(trainer_factory) -> None:
    finder = BatchSizeFinder()
    model = Sized()
    with pytest.warns(EmberWarning, match="skipped with fast_dev_run"):
        trainer_factory(callbacks=[finder], fast_dev_run=2).fit(model)
    assert finder.optimal_batch_size is None
    assert model.tried == [2, 2]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "linear"}, "mode='linear'"),
        ({"margin": 1.0}, "margin=1.0"),
        ({"steps_per_trial": 0}, "steps_per_trial=0"),
        ({"init_val": 0}, "init_val=0"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match) -> None:
    with pytest.raises(MisconfigurationError, match=match):
        BatchSizeFinder(**kwargs)
