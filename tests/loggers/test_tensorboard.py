"""TensorBoardLogger: real event files, read back with tensorboard's EventAccumulator."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from torch.utils.tensorboard import SummaryWriter

import ember
from ember.core.rank import rank_zero_only
from ember.errors import EmberWarning
from ember.loggers import TensorBoardLogger
from ember.loggers.base import DummyExperiment
from ember.testing import TinyModel


def events(folder: str | Path) -> EventAccumulator:
    """Everything written to the event files in ``folder``."""
    files = sorted(Path(folder).glob("events.out.tfevents.*"))
    assert files, f"no event file in {folder}"
    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return accumulator


def scalars(accumulator: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


def logged_hparams(accumulator: EventAccumulator) -> dict[str, object]:
    content = accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    values = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    return {name: getattr(value, value.WhichOneof("kind")) for name, value in values.items()}


def test_training_writes_the_logged_scalars_at_lightnings_steps(trainer_factory, counting_model, tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path)
    trainer = trainer_factory(logger=logger, log_every_n_steps=1, num_sanity_val_steps=0)
    trainer.fit(counting_model())
    assert trainer.log_dir == logger.log_dir == str(tmp_path / "ember_logs" / "version_0")
    accumulator = events(logger.log_dir)
    assert set(accumulator.Tags()["scalars"]) == {"a_step", "a_epoch", "b", "val", "epoch"}
    assert scalars(accumulator, "a_step") == [(0, 1), (1, 5), (2, 9), (3, 13), (4, 1), (5, 5), (6, 9), (7, 13)]
    assert scalars(accumulator, "a_epoch") == [(3, 7), (7, 7)]
    assert scalars(accumulator, "b") == [(3, 70), (7, 70)]
    assert scalars(accumulator, "val") == [(3, 2003), (7, 2003)]
    assert [value for _, value in scalars(accumulator, "epoch")] == [0] * 6 + [1] * 6


def test_saved_hyperparameters_go_to_the_hparams_tab_with_hp_metric_and_to_hparams_yaml(
    trainer_factory, tmp_path
) -> None:
    logger = TensorBoardLogger(tmp_path)
    trainer_factory(logger=logger, max_epochs=1, limit_train_batches=2, limit_val_batches=1).fit(TinyModel(lr=0.01))
    accumulator = events(logger.log_dir)
    assert scalars(accumulator, "hp_metric") == [(0, -1)]
    assert logged_hparams(accumulator) == {"features": 32, "lr": 0.01, "batch_size": 8}
    saved = yaml.safe_load((Path(logger.log_dir) / "hparams.yaml").read_text())
    assert saved == {"features": 32, "lr": 0.01, "batch_size": 8}


def test_without_saved_hyperparameters_no_hparams_are_logged_but_hparams_yaml_is_written(
    trainer_factory, counting_model, tmp_path
) -> None:
    logger = TensorBoardLogger(tmp_path)
    trainer_factory(logger=logger, max_epochs=1, num_sanity_val_steps=0).fit(counting_model())
    accumulator = events(logger.log_dir)
    assert "hp_metric" not in accumulator.Tags()["scalars"]
    assert (Path(logger.log_dir) / "hparams.yaml").read_text() == "{}\n"


def test_log_hyperparams_flattens_nested_values_and_takes_a_number_as_hp_metric(tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path)
    logger.log_hyperparams({"optimizer": {"name": "sgd", "lr": 0.1}, "layer": torch.nn.ReLU}, metrics=0.5, step=3)
    logger.finalize("success")
    accumulator = events(logger.log_dir)
    assert scalars(accumulator, "hp_metric") == [(3, 0.5)]
    assert logged_hparams(accumulator) == {
        "optimizer/name": "sgd",
        "optimizer/lr": 0.1,
        "layer": "<class 'torch.nn.modules.activation.ReLU'>",
    }


def test_default_hp_metric_false_logs_no_placeholder(tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path, default_hp_metric=False)
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.finalize("success")
    accumulator = events(logger.log_dir)
    assert accumulator.Tags()["scalars"] == ["loss"]
    with pytest.raises(KeyError):
        accumulator.PluginTagToContent("hparams")


def test_log_graph_traces_the_model_with_its_example_input(trainer_factory, counting_model, tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path, log_graph=True)
    trainer_factory(logger=logger, max_epochs=1, limit_train_batches=1, limit_val_batches=0).fit(counting_model())
    assert events(logger.log_dir).Tags()["graph"] is True


def test_log_graph_is_off_by_default(trainer_factory, counting_model, tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path)
    trainer_factory(logger=logger, max_epochs=1, limit_train_batches=1, limit_val_batches=0).fit(counting_model())
    assert events(logger.log_dir).Tags()["graph"] is False


def test_log_graph_takes_an_explicit_input_and_warns_without_one(tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path, log_graph=True)
    model = torch.nn.Linear(3, 1)
    with pytest.warns(EmberWarning, match="example_input_array"):
        logger.log_graph(model)
    with pytest.warns(EmberWarning, match="the input is a list"):
        logger.log_graph(model, [torch.zeros(1, 3)])
    logger.log_graph(model, torch.zeros(1, 3))
    logger.finalize("success")
    assert events(logger.log_dir).Tags()["graph"] is True


def test_experiment_is_a_summary_writer_for_anything_beyond_scalars(tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path, name="exp", version="run-a", flush_secs=5)
    assert isinstance(logger.experiment, SummaryWriter)
    logger.experiment.add_histogram("weights", torch.arange(10.0), 0)
    logger.finalize("success")
    assert events(tmp_path / "exp" / "run-a").Tags()["histograms"] == ["weights"]


def test_prefix_sub_dir_and_dict_values(tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path, prefix="run", sub_dir="tb")
    assert logger.log_dir == str(tmp_path / "ember_logs" / "version_0" / "tb")
    logger.log_metrics({"loss": torch.tensor(0.5), "lr": {"a": 1.0, "b": 2.0}}, step=2)
    logger.finalize("success")
    assert scalars(events(logger.log_dir), "run-loss") == [(2, 0.5)]
    groups = sorted(path.name for path in Path(logger.log_dir).iterdir() if path.is_dir())
    assert groups == ["run-lr_a", "run-lr_b"]  # add_scalars writes one run per key


def test_a_value_that_is_not_a_number_is_a_clear_error(tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path)
    with pytest.raises(ValueError, match="cannot log loss='high'"):
        logger.log_metrics({"loss": "high"}, step=0)
    logger.finalize("failed")


def test_versions_count_up_and_finalize_closes_so_a_new_run_gets_a_new_folder(tmp_path) -> None:
    first = TensorBoardLogger(tmp_path)
    first.log_metrics({"loss": 1.0}, step=0)
    first.finalize("success")
    (tmp_path / "ember_logs" / "version_4").mkdir()
    second = TensorBoardLogger(tmp_path)
    assert (first.version, second.version) == (0, 5)
    first.log_metrics({"loss": 2.0}, step=1)  # after finalize, a new event file opens
    first.finalize("success")
    assert scalars(events(first.log_dir), "loss") == [(0, 1.0), (1, 2.0)]


def test_a_logger_pickles_without_its_writer(tmp_path) -> None:
    logger = TensorBoardLogger(tmp_path)
    logger.log_metrics({"loss": 1.0}, step=0)
    copy = pickle.loads(pickle.dumps(logger))
    assert (copy.log_dir, copy.version) == (logger.log_dir, 0)
    logger.finalize("success")


def test_on_other_ranks_nothing_is_written_and_experiment_does_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    logger = TensorBoardLogger(tmp_path, log_graph=True)
    assert isinstance(logger.experiment, DummyExperiment)
    logger.experiment.add_scalar("x", 1.0, 0)
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.log_graph(torch.nn.Linear(1, 1), torch.zeros(1, 1))
    logger.finalize("success")
    assert not tmp_path.joinpath("ember_logs").exists()


def test_the_event_file_is_flushed_at_every_checkpoint(trainer_factory, counting_model, tmp_path) -> None:
    from ember.callbacks import ModelCheckpoint

    logger = TensorBoardLogger(tmp_path, flush_secs=3600, max_queue=1000)
    seen = []

    class Reading(ModelCheckpoint):
        def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
            events = EventAccumulator(logger.log_dir)
            events.Reload()
            seen.append([event.step for event in events.Scalars("a_step")])

    checkpoint = Reading(tmp_path / "ckpt", every_n_train_steps=2, save_top_k=-1)
    trainer = trainer_factory(logger=logger, callbacks=[checkpoint], max_epochs=1, log_every_n_steps=1)
    trainer.fit(counting_model())
    assert seen == [[0], [0, 1, 2]]  # saved in on_train_batch_end, before that batch's row is logged


def test_a_url_tensorboard_cannot_write_to_is_refused_with_the_accepted_ones() -> None:
    from ember.loggers import TensorBoardLogger

    with pytest.raises(ValueError, match=r"memory://x.*s3://.*CSVLogger"):
        TensorBoardLogger(save_dir="memory://x")


# ------------------------------------------------------------------ resuming
class CutShort(Exception):
    """Stands for the crash (test_preemption.py kills real processes)."""


class SaveEveryTwoStepsCrashAt(ember.Callback):
    """Saves ``step=N.ckpt`` every 2 steps in on_train_batch_end (before that batch's row is logged), as
    ModelCheckpoint(every_n_train_steps=2) does, and crashes the run at step ``crash``."""

    def __init__(self, folder: Path, crash: int = -1) -> None:
        self.folder, self.crash = folder, crash

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step % 2 == 0:
            trainer.save_checkpoint(self.folder / f"step={trainer.global_step}.ckpt")
        if trainer.global_step == self.crash:
            raise CutShort


def test_a_checkpoint_keeps_the_scalars_of_the_latest_step_logged(trainer_factory, counting_model, tmp_path) -> None:
    callbacks = [SaveEveryTwoStepsCrashAt(tmp_path, crash=3)]
    trainer = trainer_factory(logger=TensorBoardLogger(tmp_path), callbacks=callbacks, log_every_n_steps=1)
    with pytest.raises(CutShort):
        trainer.fit(counting_model())
    saved = torch.load(tmp_path / "step=2.ckpt", weights_only=True)["loggers"]["TensorBoardLogger"]
    # rows count steps from 0: the save at global step 2 came after the row of step 0, before that of step 1
    assert saved == {
        "name": "ember_logs",
        "version": 0,
        "latest_step": 0,
        "latest_scalars": [["a_step", 1.0], ["epoch", 0]],
    }


def test_the_same_logger_resumed_in_one_process_shows_each_scalar_once(
    trainer_factory, counting_model, tmp_path
) -> None:
    logger = TensorBoardLogger(tmp_path)
    callbacks = [SaveEveryTwoStepsCrashAt(tmp_path, crash=7)]
    with pytest.raises(CutShort):  # the crash finalizes the logger, which writes out rows from after step 6's save
        trainer_factory(logger=logger, callbacks=callbacks, log_every_n_steps=1).fit(counting_model())
    now = int(time.time())
    while int(time.time()) == now:  # event files are read in name order, and a name starts with the second
        time.sleep(0.05)
    resumed = trainer_factory(logger=logger, log_every_n_steps=1)
    resumed.fit(counting_model(), ckpt_path=tmp_path / "step=6.ckpt")
    accumulator = events(logger.log_dir)
    assert scalars(accumulator, "a_step") == [(0, 1), (1, 5), (2, 9), (3, 13), (4, 1), (5, 5), (6, 9), (7, 13)]
    assert scalars(accumulator, "a_epoch") == [(3, 7), (7, 7)]
    assert scalars(accumulator, "val") == [(3, 2003), (7, 2003)]


def test_validating_a_checkpoint_into_the_run_folder_hides_none_of_its_training(
    trainer_factory, counting_model, tmp_path
) -> None:
    callbacks = [SaveEveryTwoStepsCrashAt(tmp_path)]
    trainer_factory(logger=TensorBoardLogger(tmp_path), callbacks=callbacks, log_every_n_steps=1).fit(counting_model())
    validating = trainer_factory(logger=TensorBoardLogger(tmp_path, version=0))
    validating.validate(counting_model(), ckpt_path=tmp_path / "step=2.ckpt", verbose=False)
    accumulator = events(tmp_path / "ember_logs" / "version_0")
    assert scalars(accumulator, "a_step") == [(0, 1), (1, 5), (2, 9), (3, 13), (4, 1), (5, 5), (6, 9), (7, 13)]
