"""Resuming fit from a checkpoint: the same run as an uninterrupted one, callback state by state_key, hook order."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import ember
from ember.errors import EmberWarning, MisconfigurationError


class Indexed(Dataset):
    """Random regression samples that also return their index, so a test can see the batch order."""

    def __init__(self, samples: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(samples, 8, generator=generator)
        self.y = self.x.sum(dim=1, keepdim=True)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.x[index], self.y[index], index


class DropoutModel(ember.Module):
    """Dropout, a shuffled loader, Adam and a per-step scheduler: every source of randomness and state."""

    def __init__(self, lr: float = 0.01, generator_seed: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(16, 1)
        )
        self.seen: list[tuple[int, int, list[int]]] = []
        self.epoch_starts: list[int] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, index = batch
        self.seen.append((self.current_epoch, batch_idx, index.tolist()))
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y, _ = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def on_train_epoch_start(self) -> None:
        self.epoch_starts.append(self.current_epoch)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.9)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def train_dataloader(self) -> DataLoader:
        seed = self.hparams.generator_seed
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        return DataLoader(Indexed(48, seed=0), batch_size=6, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(Indexed(12, seed=1), batch_size=6)


class Interrupted(Exception):
    """Stands for the crash: the fault-tolerance tests kill a real process instead."""


class SaveThenStop(ember.Callback):
    """Saves a checkpoint the first time ``hook`` runs at ``step``, and stops the run ``later`` steps after it."""

    def __init__(self, path: Path, hook: str, step: int, later: int = 3) -> None:
        self.path, self.hook, self.step, self.later = path, hook, step, later
        self.saved_at: int | None = None

    def _maybe_save(self, trainer: ember.Trainer, hook: str) -> None:
        if hook == self.hook and self.saved_at is None and trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)
            self.saved_at = trainer.global_step

    def on_train_batch_start(self, trainer: ember.Trainer, *args: Any) -> None:
        self._maybe_save(trainer, "on_train_batch_start")

    def on_validation_end(self, trainer: ember.Trainer, *args: Any) -> None:
        self._maybe_save(trainer, "on_validation_end")

    def on_train_epoch_end(self, trainer: ember.Trainer, *args: Any) -> None:
        self._maybe_save(trainer, "on_train_epoch_end")

    def on_train_batch_end(self, trainer: ember.Trainer, *args: Any) -> None:
        self._maybe_save(trainer, "on_train_batch_end")
        if self.saved_at is not None and trainer.global_step >= self.saved_at + self.later:
            raise Interrupted


def make(root: Path, callbacks: Any = (), seed: int = 7, generator_seed: int | None = None, **flags: Any) -> Any:
    """A seeded DropoutModel and a quiet Trainer: 3 epochs of 8 batches, validation twice an epoch."""
    ember.seed_everything(seed)
    model = DropoutModel(generator_seed=generator_seed)
    options = {"max_epochs": 3, "val_check_interval": 0.5, "enable_progress_bar": False, **flags}
    options.update(enable_model_summary=False, enable_checkpointing=False, logger=False, default_root_dir=root)
    return ember.Trainer(callbacks=list(callbacks), **options), model


def fit(root: Path, callbacks: Any = (), seed: int = 7, ckpt_path: Any = None, **flags: Any) -> Any:
    trainer, model = make(root, callbacks, seed, **flags)
    trainer.fit(model, ckpt_path=ckpt_path)
    return trainer, model


def crash(root: Path, hook: str, step: int, **flags: Any) -> tuple[Path, DropoutModel]:
    """Train until ``later`` steps after a checkpoint saved in ``hook`` at ``step``; return its path and the model."""
    path = root / "run.ckpt"
    trainer, model = make(root, [SaveThenStop(path, hook, step)], **flags)
    with pytest.raises(Interrupted):
        trainer.fit(model)
    return path, model


def assert_bitwise_equal(a: Any, b: Any, where: str = "state") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_bitwise_equal(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b)):
            assert_bitwise_equal(x, y, f"{where}[{index}]")
    else:
        assert a == b, where


def assert_same_run(full: tuple[Any, Any], resumed: tuple[Any, Any]) -> None:
    (full_trainer, full_model), (trainer, model) = full, resumed
    assert_bitwise_equal(full_model.state_dict(), model.state_dict(), "model")
    assert_bitwise_equal(full_trainer.optimizers[0].state_dict(), trainer.optimizers[0].state_dict(), "optimizer")
    scheduler, full_scheduler = (
        trainer.lr_scheduler_configs[0].scheduler,
        full_trainer.lr_scheduler_configs[0].scheduler,
    )
    assert_bitwise_equal(full_scheduler.state_dict(), scheduler.state_dict(), "scheduler")
    assert (trainer.global_step, trainer.current_epoch) == (full_trainer.global_step, full_trainer.current_epoch)


# 8 batches an epoch, validation after the 4th and the 8th; steps count from 1, all in the second epoch.
SAVE_POINTS = {
    "mid-epoch batch end": ("on_train_batch_end", 10),
    "batch end before validation": ("on_train_batch_end", 12),
    "validation end inside the epoch": ("on_validation_end", 12),
    "last batch end of an epoch": ("on_train_batch_end", 16),
    "train epoch end": ("on_train_epoch_end", 16),
    "batch start": ("on_train_batch_start", 10),
}


@pytest.mark.parametrize("point", SAVE_POINTS)
def test_resumed_run_ends_bitwise_equal_to_an_uninterrupted_one(tmp_path: Path, point: str) -> None:
    full = fit(tmp_path / "full")
    path, _ = crash(tmp_path / "crash", *SAVE_POINTS[point])
    resumed = fit(tmp_path / "resume", seed=1234, ckpt_path=path)
    assert_same_run(full, resumed)


@pytest.mark.parametrize("point", SAVE_POINTS)
def test_resumed_epoch_sees_exactly_the_remaining_batches_without_a_new_epoch_start(tmp_path: Path, point: str) -> None:
    hook, step = SAVE_POINTS[point]
    _, full = fit(tmp_path / "full")
    path, crashed = crash(tmp_path / "crash", hook, step)
    _, resumed = fit(tmp_path / "resume", seed=99, ckpt_path=path)
    assert crashed.seen[:step] + resumed.seen == full.seen
    assert resumed.epoch_starts == [2]
    assert full.epoch_starts == [0, 1, 2]


def test_a_loader_with_its_own_generator_resumes_its_order_in_a_later_epoch(tmp_path: Path) -> None:
    full = fit(tmp_path / "full", generator_seed=5)
    path, crashed = crash(tmp_path / "crash", "on_train_batch_end", 19, generator_seed=5)
    resumed = fit(tmp_path / "resume", seed=3, ckpt_path=path, generator_seed=5)
    assert crashed.seen[:19] + resumed[1].seen == full[1].seen
    assert_same_run(full, resumed)


def test_a_window_of_accumulated_gradients_resumes_bitwise(tmp_path: Path) -> None:
    full = fit(tmp_path / "full", accumulate_grad_batches=2)
    path, _ = crash(tmp_path / "crash", "on_train_batch_end", 5, accumulate_grad_batches=2)
    assert torch.load(path, weights_only=True)["loops"]["fit_loop"]["batches_in_epoch"] == 1  # epoch 1, batch 1
    assert_same_run(full, fit(tmp_path / "resume", seed=2, ckpt_path=path, accumulate_grad_batches=2))


# ------------------------------------------------------------ callback state
class Tally(ember.Callback):
    """Counts the steps divisible by ``every``; two instances with different ``every`` keep their own counts."""

    def __init__(self, every: int) -> None:
        self.every, self.count, self.restored_from = every, 0, None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(every=self.every)

    def on_train_batch_end(self, trainer: ember.Trainer, *args: Any) -> None:
        self.count += trainer.global_step % self.every == 0

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.count = self.restored_from = state_dict["count"]


def test_two_instances_of_one_callback_class_keep_separate_states(tmp_path: Path) -> None:
    ones, threes = Tally(every=1), Tally(every=3)
    trainer, model = make(tmp_path, [ones, threes], max_epochs=1)
    trainer.fit(model)
    trainer.save_checkpoint(tmp_path / "tallies.ckpt")
    saved = torch.load(tmp_path / "tallies.ckpt", weights_only=True)["callbacks"]
    assert saved == {ones.state_key: {"count": 8}, threes.state_key: {"count": 2}}
    again = [Tally(every=3), Tally(every=1)]
    fit(tmp_path / "resume", again, ckpt_path=tmp_path / "tallies.ckpt", max_epochs=3)
    assert [tally.restored_from for tally in again] == [2, 8]
    assert [tally.count for tally in again] == [8, 24]


def test_checkpoint_entries_without_a_callback_give_one_warning_listing_them(tmp_path: Path) -> None:
    trainer, model = make(tmp_path, [Tally(every=1), Tally(every=2)], max_epochs=1)
    trainer.fit(model)
    trainer.save_checkpoint(tmp_path / "two.ckpt")
    with pytest.warns(EmberWarning) as caught:
        fit(tmp_path, ckpt_path=tmp_path / "two.ckpt", max_epochs=2)
    assert len(caught) == 1
    assert "Tally{'every': 1}" in str(caught[0].message) and "Tally{'every': 2}" in str(caught[0].message)


class Ordered(DropoutModel):
    """Records the restore steps in order, with the optimizer's step count when on_fit_start and training see it."""

    def __init__(self, calls: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls = calls

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.calls.append("module.on_load_checkpoint")

    def configure_optimizers(self) -> Any:
        self.calls.append("configure_optimizers")
        return super().configure_optimizers()

    def on_fit_start(self) -> None:
        self.calls.append(f"on_fit_start (optimizer steps {self._steps()})")

    def on_train_start(self) -> None:
        self.calls.append(f"on_train_start (optimizer steps {self._steps()})")

    def _steps(self) -> int:
        state = self.trainer.optimizers[0].state
        return int(next(iter(state.values()))["step"]) if state else 0


class OrderedTally(Tally):
    def __init__(self, every: int, calls: list[str]) -> None:
        super().__init__(every)
        self.calls = calls

    def on_load_checkpoint(self, *args: Any) -> None:
        self.calls.append("callback.on_load_checkpoint")

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.calls.append("callback.load_state_dict")
        super().load_state_dict(state_dict)


def test_resume_restores_in_lightnings_order(tmp_path: Path) -> None:
    trainer, model = make(tmp_path, [OrderedTally(1, [])], max_epochs=1)
    trainer.fit(model)
    trainer.save_checkpoint(tmp_path / "one.ckpt")
    calls: list[str] = []
    ember.seed_everything(0)
    trainer = ember.Trainer(callbacks=[OrderedTally(1, calls)], max_epochs=2, logger=False,
                            enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                            default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(Ordered(calls), ckpt_path=tmp_path / "one.ckpt")
    assert calls == [
        "module.on_load_checkpoint",
        "callback.on_load_checkpoint",
        "callback.load_state_dict",
        "configure_optimizers",
        "on_fit_start (optimizer steps 0)",
        "on_train_start (optimizer steps 8)",
    ]


class SanityWatch(DropoutModel):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sanity: list[bool] = []

    def on_validation_start(self) -> None:
        self.sanity.append(self.trainer.sanity_checking)


def test_the_sanity_check_is_skipped_when_resuming(tmp_path: Path) -> None:
    path, _ = crash(tmp_path / "crash", "on_train_batch_end", 10)
    trainer, _ = make(tmp_path / "resume")
    model = SanityWatch()
    trainer.fit(model, ckpt_path=path)
    assert model.sanity == [False] * 4
    fresh = SanityWatch()
    make(tmp_path / "fresh")[0].fit(fresh)
    assert fresh.sanity[0] is True


# ---------------------------------------------------------- built-in callbacks
class WithBackbone(DropoutModel):
    """A ``backbone`` for BackboneFinetuning; no scheduler, for StochasticWeightAveraging's own SWALR."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backbone = self.net[0]

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.01, momentum=0.9)


def builtins(folder: Path) -> dict[str, Any]:
    """A factory per stateful built-in; ModelCheckpoint writes into ``folder``."""
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

    return {
        "BackboneFinetuning": lambda: BackboneFinetuning(unfreeze_backbone_at_epoch=1),
        "StochasticWeightAveraging": lambda: StochasticWeightAveraging(swa_lrs=0.005, swa_epoch_start=1),
        "WeightAveraging": lambda: WeightAveraging(),
        "EMAWeightAveraging": lambda: EMAWeightAveraging(decay=0.9),
        "Timer": lambda: Timer(),
        "ModelCheckpoint": lambda: ModelCheckpoint(dirpath=folder, monitor="val_loss", save_top_k=2),
        "EarlyStopping": lambda: EarlyStopping(monitor="val_loss", patience=2, check_on_train_epoch_end=False),
        "ModelPruning": lambda: ModelPruning("l1_unstructured", amount=0.2, use_lottery_ticket_hypothesis=True),
        "SpikeDetection": lambda: SpikeDetection(atol=1e9),
    }


BUILTINS_WITH_STATE = ["BackboneFinetuning", "StochasticWeightAveraging", "WeightAveraging", "EMAWeightAveraging",
                       "Timer", "ModelCheckpoint", "EarlyStopping", "ModelPruning", "SpikeDetection"]  # fmt: skip


def comparable(name: str, state: dict[str, Any]) -> dict[str, Any]:
    """A built-in's state without what differs between two runs that are the same (times, folders)."""
    if name == "ModelCheckpoint":
        scores = {Path(path).name: score for path, score in state["best_k_models"].items()}
        return {"best_k_models": scores, "best_model_score": state["best_model_score"]}
    if name == "SpikeDetection":
        return {key: value for key, value in state.items() if key != "bad_batches_path"}
    return state


@pytest.mark.parametrize("name", BUILTINS_WITH_STATE)
def test_builtin_callback_state_survives_a_mid_epoch_resume(tmp_path: Path, name: str) -> None:
    model_class = WithBackbone if name in ("BackboneFinetuning", "StochasticWeightAveraging") else DropoutModel

    def run(root: Path, callbacks: list[Any], seed: int = 7, ckpt_path: Any = None) -> Any:
        ember.seed_everything(seed)
        model = model_class()
        trainer = ember.Trainer(callbacks=callbacks, max_epochs=3, val_check_interval=0.5, logger=False,
                                enable_progress_bar=False, enable_model_summary=False, default_root_dir=root,
                                enable_checkpointing=name == "ModelCheckpoint")  # fmt: skip
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "checkpoint directory .* is not empty", EmberWarning)
            trainer.fit(model, ckpt_path=ckpt_path)
        return model

    full_callback = builtins(tmp_path / "full")[name]()
    full = run(tmp_path / "full", [full_callback])
    make_callback = builtins(tmp_path / "run")[name]
    saver = SaveThenStop(tmp_path / "run.ckpt", "on_train_batch_end", 12)
    with pytest.raises(Interrupted):
        run(tmp_path / "crash", [make_callback(), saver])
    saved = torch.load(tmp_path / "run.ckpt", weights_only=True)["callbacks"]
    callback = make_callback()
    assert callback.state_key in saved
    resumed = run(tmp_path / "resume", [callback], seed=5, ckpt_path=tmp_path / "run.ckpt")
    if name == "Timer":
        assert callback.time_elapsed("train") >= saved[callback.state_key]["time_elapsed"]["train"]
        return
    assert_bitwise_equal(full.state_dict(), resumed.state_dict(), "model")
    assert_bitwise_equal(comparable(name, full_callback.state_dict()), comparable(name, callback.state_dict()), name)


def test_resuming_with_max_epochs_below_the_checkpoints_epoch_is_an_error_naming_both(tmp_path: Path) -> None:
    trainer, _ = fit(tmp_path / "first", max_epochs=3)
    path = tmp_path / "done.ckpt"
    trainer.save_checkpoint(path)
    with pytest.raises(MisconfigurationError, match=r"epoch 3.*max_epochs=2"):
        fit(tmp_path / "second", ckpt_path=path, max_epochs=2)


def test_resuming_with_max_epochs_equal_to_the_checkpoints_epoch_trains_no_more(tmp_path: Path) -> None:
    trainer, _ = fit(tmp_path / "first", max_epochs=3)
    path = tmp_path / "done.ckpt"
    trainer.save_checkpoint(path)
    resumed, _ = fit(tmp_path / "second", ckpt_path=path, max_epochs=3)
    assert (resumed.current_epoch, resumed.global_step) == (3, trainer.global_step)


# ------------------------------------------------------- max_steps stop, continue
class SaveAtEpochEnd(ember.Callback):
    """Saves a checkpoint at every on_train_epoch_end, as ModelCheckpoint does, overwriting the previous one."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_epoch_end(self, trainer: ember.Trainer, *args: Any) -> None:
        trainer.save_checkpoint(self.path)


@pytest.mark.parametrize("where", ["after fit", "on_train_epoch_end"])
def test_continuing_a_max_steps_run_to_twice_the_steps_is_one_run_to_twice_the_steps(
    tmp_path: Path, where: str
) -> None:
    # 8 batches an epoch: step 10 stops in the middle of the second epoch, step 20 in the middle of the third
    full = fit(tmp_path / "full", max_steps=20)
    path = tmp_path / "first.ckpt"
    first_trainer, first = fit(tmp_path / "first", [SaveAtEpochEnd(path)] if where != "after fit" else [], max_steps=10)
    if where == "after fit":
        first_trainer.save_checkpoint(path)
    resumed = fit(tmp_path / "second", seed=321, ckpt_path=path, max_steps=20)
    assert first.seen + resumed[1].seen == full[1].seen
    assert_same_run(full, resumed)


def test_a_max_steps_stop_inside_an_epoch_counts_the_epoch_as_ended(tmp_path: Path) -> None:
    trainer, model = fit(tmp_path, max_steps=10)
    assert (trainer.global_step, trainer.current_epoch) == (10, 2)
    assert model.epoch_starts == [0, 1]
