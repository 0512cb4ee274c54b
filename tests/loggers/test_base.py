"""The Logger base class: what a third-party logger gets from a run, Trainer(logger=...), trainer.log_dir."""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import ember
from ember.core.rank import rank_zero_only
from ember.errors import MisconfigurationError
from ember.loggers import CSVLogger, Logger, TensorBoardLogger
from ember.loggers.base import DummyExperiment
from ember.testing import TinyDataModule, TinyModel


class ListLogger(Logger):
    """A third-party logger: keeps every call in ``calls``; writes no files unless given a save_dir."""

    def __init__(self, save_dir: str | None = None, version: int | str = 0) -> None:
        self._save_dir, self._version = save_dir, version
        self.calls: list[tuple[Any, ...]] = []

    @property
    def name(self) -> str:
        return "lists"

    @property
    def version(self) -> int | str:
        return self._version

    @property
    def save_dir(self) -> str | None:
        return self._save_dir

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.calls.append(("log_metrics", dict(metrics), step))

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("log_hyperparams", dict(params)))

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        self.calls.append(("log_graph", type(model).__name__))

    def finalize(self, status: str) -> None:
        self.calls.append(("finalize", status))


def test_a_third_party_logger_gets_hyperparameters_graph_metrics_and_the_final_status(
    trainer_factory, counting_model
) -> None:
    logger = ListLogger()
    trainer = trainer_factory(logger=logger, max_epochs=1, log_every_n_steps=2, num_sanity_val_steps=0)
    trainer.fit(counting_model())
    assert logger.calls == [
        ("log_graph", "CountingModel"),  # no hyperparameters: the model never called save_hyperparameters
        ("log_metrics", {"a_step": 5.0, "epoch": 0}, 1),
        ("log_metrics", {"a_step": 13.0, "epoch": 0}, 3),
        ("log_metrics", {"val": 2003.0, "epoch": 0}, 3),
        ("log_metrics", {"a_epoch": 7.0, "b": 70.0, "epoch": 0}, 3),
        ("finalize", "success"),
    ]


def test_hyperparameters_of_model_and_datamodule_are_logged_once_saved(trainer_factory) -> None:
    class Data(TinyDataModule):
        def __init__(self, batch_size: int = 8) -> None:
            super().__init__(batch_size)
            self.save_hyperparameters()

    logger = ListLogger()
    trainer = trainer_factory(logger=logger, max_epochs=1, limit_train_batches=1, limit_val_batches=0)
    trainer.fit(TinyModel(lr=0.01), datamodule=Data(batch_size=4))
    assert logger.calls[0] == ("log_hyperparams", {"features": 32, "lr": 0.01, "batch_size": 4})


def test_save_hyperparameters_logger_false_keeps_them_from_the_loggers(trainer_factory) -> None:
    class Quiet(TinyModel):
        def __init__(self) -> None:
            super().__init__()
            self.save_hyperparameters({"lr": 0.05}, logger=False)

    logger = ListLogger()
    trainer_factory(logger=logger, max_epochs=1, limit_train_batches=1, limit_val_batches=0).fit(Quiet())
    assert [call[0] for call in logger.calls] == ["log_graph", "finalize"]


def test_a_logger_must_implement_name_version_log_metrics_and_log_hyperparams() -> None:
    class Incomplete(Logger):
        def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
            pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


def test_log_dir_is_save_dir_name_version_and_none_without_a_save_dir(tmp_path) -> None:
    assert ListLogger(str(tmp_path), version=3).log_dir == str(tmp_path / "lists" / "version_3")
    assert ListLogger(str(tmp_path), version="run-a").log_dir == str(tmp_path / "lists" / "run-a")
    assert ListLogger().log_dir is None and ListLogger().root_dir is None


@pytest.mark.parametrize("flag", [True, None])
def test_logger_true_or_none_is_a_tensorboard_logger_in_default_root_dir(trainer_factory, tmp_path, flag) -> None:
    trainer = trainer_factory(logger=flag)
    assert [type(logger) for logger in trainer.loggers] == [TensorBoardLogger]
    assert trainer.logger.save_dir == str(tmp_path)
    assert trainer.log_dir == str(tmp_path / "ember_logs" / "version_0")


def test_without_tensorboard_installed_the_default_is_a_csv_logger(trainer_factory, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # what an environment without the package looks like
    trainer = trainer_factory(logger=True)
    assert [type(logger) for logger in trainer.loggers] == [CSVLogger]
    assert trainer.log_dir == str(tmp_path / "ember_logs" / "version_0")


def test_the_default_loggers_experiment_takes_images_from_the_module(trainer_factory) -> None:
    class Drawing(TinyModel):
        def on_train_epoch_end(self) -> None:
            self.logger.experiment.add_image("weights", self.layer.weight.detach()[None], self.global_step)

    trainer = trainer_factory(logger=True, max_epochs=1, limit_train_batches=2, limit_val_batches=0)
    trainer.fit(Drawing())
    events = EventAccumulator(trainer.log_dir)
    events.Reload()
    assert events.Tags()["images"] == ["weights"]
    assert [image.step for image in events.Images("weights")] == [2]


def test_logger_false_means_none_and_log_dir_is_default_root_dir(trainer_factory, tmp_path) -> None:
    trainer = trainer_factory(logger=False)
    assert trainer.loggers == [] and trainer.logger is None
    assert trainer.log_dir == str(tmp_path)


def test_one_logger_or_a_list_and_the_first_one_gives_log_dir(trainer_factory, tmp_path) -> None:
    single = ListLogger(str(tmp_path / "a"))
    assert trainer_factory(logger=single).loggers == [single]
    tensorboard = TensorBoardLogger(tmp_path / "tb", sub_dir="events")
    trainer = trainer_factory(logger=(tensorboard, single))
    assert trainer.loggers == [tensorboard, single]
    assert trainer.log_dir == str(tmp_path / "tb" / "ember_logs" / "version_0" / "events")


def test_a_logger_without_a_folder_leaves_log_dir_at_default_root_dir(trainer_factory, tmp_path) -> None:
    assert trainer_factory(logger=ListLogger()).log_dir == str(tmp_path)


@pytest.mark.parametrize("bad", ["csv", [CSVLogger("."), "tensorboard"], 3])
def test_anything_else_is_a_misconfiguration_naming_it(trainer_factory, bad) -> None:
    with pytest.raises(MisconfigurationError, match="accepted are True, False, None, a Logger or a list"):
        trainer_factory(logger=bad)


def test_an_object_may_be_both_a_callback_and_a_logger(trainer_factory, counting_model) -> None:
    class Both(ember.Callback, ListLogger):
        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self.calls.append(("on_train_epoch_end", trainer.current_epoch))

    both = Both()
    trainer = trainer_factory(logger=both, callbacks=[both], max_epochs=1, limit_val_batches=0)
    trainer.fit(counting_model())
    assert [call[0] for call in both.calls] == ["log_graph", "on_train_epoch_end", "log_metrics", "finalize"]


def test_checkpoints_keep_each_loggers_state(trainer_factory, tmp_path) -> None:
    trainer = trainer_factory(logger=CSVLogger(tmp_path, version="run-a"), max_epochs=1, limit_train_batches=1)
    trainer.fit(TinyModel())
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    checkpoint = torch.load(tmp_path / "model.ckpt", weights_only=True)
    assert checkpoint["loggers"] == {"CSVLogger": {"name": "ember_logs", "version": "run-a", "rows": 1}}


class ClientLogger(ListLogger):
    """A third-party logger with a backend object: it says only how to make it."""

    def _create_experiment(self) -> list[str]:
        self.calls.append(("created",))
        return ["client"]


def test_a_loggers_experiment_is_made_once_on_first_use(monkeypatch) -> None:
    logger = ClientLogger()
    assert logger.calls == []
    assert logger.experiment is logger.experiment == ["client"]
    assert logger.calls == [("created",)]
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    other_rank = ClientLogger()
    assert isinstance(other_rank.experiment, DummyExperiment)
    assert other_rank.calls == []  # other ranks start nothing


def test_a_logger_without_an_experiment_says_so() -> None:
    assert getattr(ListLogger(), "experiment", None) is None
    with pytest.raises(AttributeError, match="ListLogger has no experiment"):
        _ = ListLogger().experiment


def test_the_stand_in_experiment_of_other_ranks_accepts_any_call() -> None:
    dummy = DummyExperiment()
    assert dummy.add_scalar("loss", 1.0, 0) is None
    assert dummy.add_image("sample", torch.zeros(3, 2, 2), global_step=1) is None
    assert isinstance(copy.deepcopy(dummy), DummyExperiment)


def test_log_dir_of_a_finished_fit_holds_the_run_files(trainer_factory, tmp_path) -> None:
    trainer = trainer_factory(logger=True, max_epochs=1, limit_train_batches=2, log_every_n_steps=1)
    trainer.fit(TinyModel())
    names = sorted(path.name for path in Path(trainer.log_dir).iterdir())
    assert names[0].startswith("events.out.tfevents.") and names[1:] == ["hparams.yaml"]


def test_a_version_is_claimed_by_creating_its_folder(tmp_path) -> None:
    first, second = CSVLogger(tmp_path), TensorBoardLogger(tmp_path)
    assert (first.version, second.version) == (0, 1)
    assert sorted(path.name for path in (tmp_path / "ember_logs").iterdir()) == ["version_0", "version_1"]


@pytest.mark.parametrize("name", ["ember_logs", None])
def test_an_unwritable_save_dir_is_an_error_naming_the_folder(tmp_path, name) -> None:
    (tmp_path / "blocker").write_text("a file where the folder should be")
    with pytest.raises(OSError, match=r"CSVLogger cannot create its log folder .*blocker.*pass a writable save_dir"):
        _ = CSVLogger(tmp_path / "blocker", name=name).version


def test_an_unwritable_log_folder_fails_the_fit_before_the_first_batch(trainer_factory, tmp_path) -> None:
    steps = []

    class Counting(TinyModel):
        def training_step(self, batch, batch_idx):
            steps.append(batch_idx)
            return super().training_step(batch, batch_idx)

    (tmp_path / "blocker").write_text("a file where the folder should be")
    trainer = trainer_factory(logger=CSVLogger(tmp_path / "blocker"), max_epochs=1)
    with pytest.raises(OSError, match="cannot create its log folder"):
        trainer.fit(Counting())
    assert steps == []
