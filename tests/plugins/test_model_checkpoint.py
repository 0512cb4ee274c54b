"""ModelCheckpoint: which files a real fit leaves on disk, their names, the best-k bookkeeping, and resume."""

from __future__ import annotations

import math
import os
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import yaml

import ember
from ember.callbacks import Checkpoint, ModelCheckpoint
from ember.errors import EmberWarning, MisconfigurationError
from ember.loggers import CSVLogger
from ember.testing import TinyModel, make_trainer


class Scripted(TinyModel):
    """Logs ``val_loss`` = ``scores[current_epoch]`` (the last one repeated), so rankings are known in advance."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.scores = scores

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.scores[min(self.current_epoch, len(self.scores) - 1)])


def fit(root: Path, model: ember.Module, *callbacks, ckpt_path=None, **flags) -> ember.Trainer:
    """Fit with test defaults (two epochs, one validation batch, no sanity check) and checkpointing on."""
    options = {"enable_checkpointing": None, "num_sanity_val_steps": 0, "limit_val_batches": 1, **flags}
    trainer = make_trainer(root, callbacks=list(callbacks), **options)
    trainer.fit(model, ckpt_path=ckpt_path)
    return trainer


def names(folder: Path | str) -> list[str]:
    """The file names in ``folder``; none when it was never created."""
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


# ------------------------------------------------------------------ defaults
def test_a_trainer_without_arguments_has_a_model_checkpoint() -> None:
    trainer = ember.Trainer(enable_progress_bar=False, enable_model_summary=False)
    assert [type(c) for c in trainer.checkpoint_callbacks] == [ModelCheckpoint]
    assert trainer.checkpoint_callback is trainer.checkpoint_callbacks[0]


def test_default_saves_the_latest_epoch_as_epoch_step_in_default_root_dir(tmp_path) -> None:
    trainer = ember.Trainer(
        max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path
    )
    trainer.fit(TinyModel())
    assert names(tmp_path / "checkpoints") == ["epoch=2-step=24.ckpt"]
    assert trainer.checkpoint_callback.best_model_path == str(tmp_path / "checkpoints" / "epoch=2-step=24.ckpt")


def test_with_a_logger_the_default_folder_is_the_log_dir(tmp_path) -> None:
    trainer = fit(tmp_path, TinyModel(), ModelCheckpoint(), logger=CSVLogger(tmp_path), max_epochs=1)
    folder = Path(trainer.log_dir) / "checkpoints"
    assert folder == tmp_path / "ember_logs" / "version_0" / "checkpoints"
    assert names(folder) == ["epoch=0-step=8.ckpt"]


def test_enable_checkpointing_false_saves_nothing(tmp_path) -> None:
    trainer = fit(tmp_path, TinyModel(), enable_checkpointing=False)
    assert trainer.checkpoint_callbacks == []
    assert not (tmp_path / "checkpoints").exists()


def test_a_users_instance_replaces_the_default(tmp_path) -> None:
    mine = ModelCheckpoint(dirpath=tmp_path / "mine", filename="{epoch}")
    trainer = fit(tmp_path, TinyModel(), mine)
    assert trainer.checkpoint_callbacks == [mine]
    assert names(tmp_path / "mine") == ["epoch=1.ckpt"]
    assert not (tmp_path / "checkpoints").exists()


def test_is_a_checkpoint_callback_and_runs_after_the_others(tmp_path) -> None:
    seen: list[str] = []

    class Other(ember.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            seen.append("other")

    class Spy(ModelCheckpoint):
        def on_train_epoch_end(self, trainer, pl_module):
            seen.append("checkpoint")

    trainer = fit(tmp_path, TinyModel(), Spy(dirpath=tmp_path), Other(), max_epochs=1)
    assert isinstance(trainer.checkpoint_callback, Checkpoint)
    assert seen == ["other", "checkpoint"]


def test_sees_what_the_module_logs_in_on_train_epoch_end(tmp_path) -> None:
    class LogsAtEpochEnd(TinyModel):
        def on_train_epoch_end(self):
            self.log("score", float(self.current_epoch))

    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="score", mode="max", filename="{score:.0f}")
    fit(tmp_path, LogsAtEpochEnd(), checkpoint, max_epochs=3)
    assert names(tmp_path) == ["score=2.ckpt"]
    assert checkpoint.best_model_score.item() == 2.0


# ----------------------------------------------------------------- file names
def test_filename_template_inserts_metric_names(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", filename="{epoch}-{val_loss:.2f}")
    fit(tmp_path, Scripted([0.123, 0.456]), checkpoint)
    assert names(tmp_path) == ["epoch=0-val_loss=0.12.ckpt"]


def test_auto_insert_metric_name_false_keeps_the_template_as_written(tmp_path) -> None:
    checkpoint = ModelCheckpoint(
        dirpath=tmp_path, filename="e{epoch:02d}_loss{val_loss:.1f}", auto_insert_metric_name=False
    )
    fit(tmp_path, Scripted([0.25]), checkpoint, max_epochs=1)
    assert names(tmp_path) == ["e00_loss0.2.ckpt"]


def test_format_checkpoint_name_fills_missing_fields_with_zero(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}-{missing:.1f}")
    path = checkpoint.format_checkpoint_name({"epoch": torch.tensor(3)}, ver=2)
    assert Path(path) == tmp_path / "epoch=3-missing=0.0-v2.ckpt"


def test_rerun_into_the_same_folder_adds_version_suffixes(tmp_path) -> None:
    fit(tmp_path, TinyModel(), ModelCheckpoint(dirpath=tmp_path / "c", save_last=True))
    with pytest.warns(EmberWarning, match="exists and is not empty"):
        fit(tmp_path, TinyModel(), ModelCheckpoint(dirpath=tmp_path / "c", save_last=True))
    assert names(tmp_path / "c") == ["epoch=1-step=16-v1.ckpt", "epoch=1-step=16.ckpt", "last-v1.ckpt", "last.ckpt"]


def test_without_the_version_counter_a_rerun_overwrites(tmp_path) -> None:
    fit(tmp_path, TinyModel(), ModelCheckpoint(dirpath=tmp_path / "c", enable_version_counter=False))
    with pytest.warns(EmberWarning, match="exists and is not empty"):
        fit(tmp_path, TinyModel(), ModelCheckpoint(dirpath=tmp_path / "c", enable_version_counter=False))
    assert names(tmp_path / "c") == ["epoch=1-step=16.ckpt"]


# ---------------------------------------------------------------------- top k
def test_save_top_k_keeps_the_k_best_and_tracks_them(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=2, filename="{epoch}")
    fit(tmp_path, Scripted([0.5, 0.3, 0.4, 0.6, 0.2]), checkpoint, max_epochs=5)
    assert names(tmp_path) == ["epoch=1.ckpt", "epoch=4.ckpt"]
    assert checkpoint.best_model_path == str(tmp_path / "epoch=4.ckpt")
    assert checkpoint.best_model_score.item() == pytest.approx(0.2)
    assert checkpoint.kth_best_model_path == str(tmp_path / "epoch=1.ckpt")
    assert checkpoint.kth_value.item() == pytest.approx(0.3)
    assert {Path(p).name: round(v.item(), 3) for p, v in checkpoint.best_k_models.items()} == {
        "epoch=1.ckpt": 0.3,
        "epoch=4.ckpt": 0.2,
    }


def test_mode_max_keeps_the_highest(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", mode="max", filename="{epoch}")
    fit(tmp_path, Scripted([0.5, 0.9, 0.4]), checkpoint, max_epochs=3)
    assert names(tmp_path) == ["epoch=1.ckpt"]


def test_save_top_k_minus_one_keeps_every_checkpoint(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=-1, filename="{epoch}")
    fit(tmp_path, Scripted([0.5, 0.3, 0.4]), checkpoint, max_epochs=3)
    assert names(tmp_path) == ["epoch=0.ckpt", "epoch=1.ckpt", "epoch=2.ckpt"]
    assert len(checkpoint.best_k_models) == 3


def test_save_top_k_zero_saves_nothing_but_last(tmp_path) -> None:
    fit(tmp_path, TinyModel(), ModelCheckpoint(dirpath=tmp_path / "none", save_top_k=0))
    assert names(tmp_path / "none") == []
    fit(tmp_path, TinyModel(), ModelCheckpoint(dirpath=tmp_path / "last", save_top_k=0, save_last=True))
    assert names(tmp_path / "last") == ["last.ckpt"]


def test_nan_scores_rank_worst(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=2, filename="{epoch}")
    fit(tmp_path, Scripted([math.nan, 0.5, 0.7]), checkpoint, max_epochs=3)
    assert names(tmp_path) == ["epoch=1.ckpt", "epoch=2.ckpt"]
    assert checkpoint.best_model_score.item() == pytest.approx(0.5)


def test_a_monitor_that_was_never_logged_is_an_error_listing_the_logged_keys(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val_acc")
    with pytest.raises(MisconfigurationError, match=r"'val_acc'.*\['epoch', 'step', 'train_loss', 'val_loss'\]"):
        fit(tmp_path, TinyModel(), checkpoint)


def test_without_validation_a_missing_monitor_warns_and_saves_nothing(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "c", monitor="val_loss")
    with pytest.warns(EmberWarning, match="could not find 'val_loss'"):
        fit(tmp_path, TinyModel(), checkpoint, limit_val_batches=0)
    assert names(tmp_path / "c") == []


def test_to_yaml_writes_paths_and_scores(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=2, filename="{epoch}")
    fit(tmp_path, Scripted([0.5, 0.25]), checkpoint)
    checkpoint.to_yaml()
    saved = yaml.safe_load((tmp_path / "best_k_models.yaml").read_text())
    assert saved == {str(tmp_path / "epoch=0.ckpt"): 0.5, str(tmp_path / "epoch=1.ckpt"): 0.25}


# ----------------------------------------------------------------- save_last
def test_save_last_true_writes_a_last_ckpt_file_whenever_a_checkpoint_is_saved(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", filename="{epoch}", save_last=True)
    fit(tmp_path, Scripted([0.5, 0.2, 0.3]), checkpoint, max_epochs=3)
    assert names(tmp_path) == ["epoch=1.ckpt", "last.ckpt"]
    assert not (tmp_path / "last.ckpt").is_symlink()
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["epoch"] == 1  # epoch 2 was not saved
    assert checkpoint.last_model_path == str(tmp_path / "last.ckpt")


def test_save_last_link_is_a_relative_symlink_to_the_latest_checkpoint(tmp_path) -> None:
    checkpoint = ModelCheckpoint(
        dirpath=tmp_path, monitor="val_loss", save_top_k=2, filename="{epoch}", save_last="link"
    )
    fit(tmp_path, Scripted([0.5, 0.3, 0.4, 0.6, 0.2]), checkpoint, max_epochs=5)
    last = tmp_path / "last.ckpt"
    assert last.is_symlink()
    assert os.readlink(last) == "epoch=4.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 4


def test_save_last_link_never_points_at_itself(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, filename="{epoch}", save_last="link")
    fit(tmp_path, TinyModel(), checkpoint, max_epochs=3)
    assert os.readlink(tmp_path / "last.ckpt") == "epoch=2.ckpt"
    assert names(tmp_path) == ["epoch=0.ckpt", "epoch=1.ckpt", "epoch=2.ckpt", "last.ckpt"]


# ------------------------------------------------------------------- triggers
def test_every_n_train_steps(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=3, save_top_k=-1, save_last=True)
    fit(tmp_path, TinyModel(), checkpoint)
    assert names(tmp_path) == [
        "epoch=0-step=3.ckpt",
        "epoch=0-step=6.ckpt",
        "epoch=1-step=12.ckpt",
        "epoch=1-step=15.ckpt",
        "epoch=1-step=9.ckpt",
        "last.ckpt",
    ]


def test_every_n_epochs(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, every_n_epochs=2, save_top_k=-1)
    fit(tmp_path, TinyModel(), checkpoint, max_epochs=5)
    assert names(tmp_path) == ["epoch=1-step=16.ckpt", "epoch=3-step=32.ckpt"]


def test_train_time_interval_of_zero_saves_after_every_batch(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, train_time_interval=timedelta(0), save_top_k=-1, filename="{step}")
    fit(tmp_path, TinyModel(), checkpoint, max_epochs=1, limit_train_batches=3)
    assert names(tmp_path) == ["step=1.ckpt", "step=2.ckpt", "step=3.ckpt"]


def test_validation_twice_an_epoch_saves_after_each_validation(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1)
    fit(tmp_path, TinyModel(), checkpoint, val_check_interval=0.5)
    assert names(tmp_path) == [
        "epoch=0-step=4.ckpt",
        "epoch=0-step=8.ckpt",
        "epoch=1-step=12.ckpt",
        "epoch=1-step=16.ckpt",
    ]


def test_save_on_train_epoch_end_false_saves_at_validation_end(tmp_path) -> None:
    class LogsAtEpochEnd(TinyModel):
        def on_train_epoch_end(self):
            self.log("late", 1.0)

    checkpoint = ModelCheckpoint(dirpath=tmp_path, filename="{late}", save_on_train_epoch_end=False)
    fit(tmp_path, LogsAtEpochEnd(), checkpoint, max_epochs=1)
    assert names(tmp_path) == ["late=0.ckpt"]  # validation ran before the module logged "late"


def test_save_weights_only_leaves_out_the_training_state(tmp_path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_weights_only=True, filename="w")
    fit(tmp_path, TinyModel(), checkpoint, max_epochs=1)
    saved = torch.load(tmp_path / "w.ckpt", weights_only=True)
    assert "state_dict" in saved and "optimizer_states" not in saved and "callbacks" not in saved


def test_save_on_exception_saves_where_the_run_failed(tmp_path) -> None:
    class FailsInSecondEpoch(TinyModel):
        def training_step(self, batch, batch_idx):
            if self.current_epoch == 1 and batch_idx == 3:
                raise RuntimeError("boom")
            return super().training_step(batch, batch_idx)

    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_on_exception=True, save_top_k=-1)
    with pytest.raises(RuntimeError, match="boom"):
        fit(tmp_path, FailsInSecondEpoch(), checkpoint)
    assert names(tmp_path) == ["epoch=0-step=8.ckpt", "epoch=1-step=11.ckpt"]
    assert torch.load(tmp_path / "epoch=1-step=11.ckpt", weights_only=True)["global_step"] == 11


def test_nothing_is_saved_under_fast_dev_run_or_outside_fit(tmp_path) -> None:
    fit(tmp_path, TinyModel(), ModelCheckpoint(dirpath=tmp_path / "c", save_last=True), fast_dev_run=2)
    trainer = ember.Trainer(
        callbacks=[ModelCheckpoint(dirpath=tmp_path / "c", save_last=True)],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(TinyModel(), verbose=False)
    assert names(tmp_path / "c") == []


# ---------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "best"}, "mode='best'"),
        ({"save_top_k": -2}, "save_top_k=-2"),
        ({"save_top_k": 3}, "save_top_k=3, monitor=None"),
        ({"every_n_train_steps": 2, "every_n_epochs": 1}, "at most one"),
        ({"every_n_epochs": -1}, "every_n_epochs=-1"),
        ({"save_last": "copy"}, "save_last='copy'"),
    ],
)
def test_bad_arguments_are_errors_naming_the_value(kwargs, message) -> None:
    with pytest.raises(MisconfigurationError, match=message):
        ModelCheckpoint(**kwargs)


def test_state_key_names_the_identity_arguments() -> None:
    key = ModelCheckpoint(monitor="val_loss", mode="max", every_n_train_steps=5).state_key
    assert key == (
        "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'max', 'every_n_train_steps': 5, "
        "'every_n_epochs': 0, 'train_time_interval': None}"
    )


# --------------------------------------------------------------------- resume
def test_resume_restores_the_best_k_bookkeeping(tmp_path) -> None:
    def make() -> ModelCheckpoint:
        return ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=2, filename="{epoch}", save_last=True)

    first = make()
    fit(tmp_path, Scripted([0.5, 0.3, 0.4]), first, max_epochs=3)
    restored = make()
    with pytest.warns(EmberWarning, match="not empty"):
        fit(tmp_path, Scripted([0.5]), restored, max_epochs=3, ckpt_path=tmp_path / "last.ckpt")  # nothing left to run
    assert restored.best_model_path == first.best_model_path == str(tmp_path / "epoch=1.ckpt")
    assert restored.best_model_score.item() == pytest.approx(0.3)
    assert restored.kth_best_model_path == str(tmp_path / "epoch=2.ckpt")
    assert {p: v.item() for p, v in restored.best_k_models.items()} == {
        p: v.item() for p, v in first.best_k_models.items()
    }
    assert restored.last_model_path == str(tmp_path / "last.ckpt")


def test_resumed_training_continues_the_ranking(tmp_path) -> None:
    def make() -> ModelCheckpoint:
        return ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=2, filename="{epoch}", save_last=True)

    scores = [0.5, 0.3, 0.4, 0.35, 0.1]
    fit(tmp_path, Scripted(scores), make(), max_epochs=3)
    resumed = make()
    with pytest.warns(EmberWarning, match="not empty"):
        fit(tmp_path, Scripted(scores), resumed, max_epochs=5, ckpt_path=tmp_path / "last.ckpt")
    assert names(tmp_path) == ["epoch=1.ckpt", "epoch=4.ckpt", "last.ckpt"]  # 0.35 replaced 0.4, then 0.1 replaced 0.35
    assert resumed.best_model_path == str(tmp_path / "epoch=4.ckpt")


def test_pruning_never_deletes_the_checkpoint_the_run_resumed_from(tmp_path) -> None:
    fit(tmp_path, TinyModel(), ModelCheckpoint(dirpath=tmp_path, filename="{epoch}"), max_epochs=1)
    with pytest.warns(EmberWarning, match="not empty"):
        fit(
            tmp_path,
            TinyModel(),
            ModelCheckpoint(dirpath=tmp_path, filename="{epoch}"),
            max_epochs=3,
            ckpt_path=tmp_path / "epoch=0.ckpt",
        )
    assert names(tmp_path) == ["epoch=0.ckpt", "epoch=2.ckpt"]


def test_two_checkpoints_on_different_monitors_keep_separate_states(tmp_path) -> None:
    class TwoMetrics(Scripted):
        def validation_step(self, batch, batch_idx):
            super().validation_step(batch, batch_idx)
            self.log("val_acc", 1.0 - self.scores[min(self.current_epoch, len(self.scores) - 1)])

    def make() -> tuple[ModelCheckpoint, ModelCheckpoint]:
        return (
            ModelCheckpoint(dirpath=tmp_path / "loss", monitor="val_loss", filename="{epoch}", save_last=True),
            ModelCheckpoint(dirpath=tmp_path / "acc", monitor="val_acc", mode="max", filename="{epoch}"),
        )

    loss, acc = make()
    fit(tmp_path, TwoMetrics([0.5, 0.2, 0.6]), loss, acc, max_epochs=3)
    # loss/last.ckpt was last written at epoch 1, by the val_loss callback, before the val_acc one ran
    saved = torch.load(tmp_path / "loss" / "last.ckpt", weights_only=True)["callbacks"]
    assert Path(saved[loss.state_key]["best_model_path"]) == tmp_path / "loss" / "epoch=1.ckpt"
    assert Path(saved[acc.state_key]["best_model_path"]) == tmp_path / "acc" / "epoch=0.ckpt"
    loss2, acc2 = make()
    with pytest.warns(EmberWarning, match="not empty"):  # nothing left to run: only the states are restored
        fit(tmp_path, TwoMetrics([0.5]), loss2, acc2, max_epochs=2, ckpt_path=tmp_path / "loss" / "last.ckpt")
    assert loss2.best_model_path == str(tmp_path / "loss" / "epoch=1.ckpt")
    assert loss2.best_model_score.item() == pytest.approx(0.2)
    assert acc2.best_model_path == str(tmp_path / "acc" / "epoch=0.ckpt")
    assert acc2.best_model_score.item() == pytest.approx(0.5)


def test_a_changed_dirpath_restores_only_best_model_path(tmp_path) -> None:
    first = ModelCheckpoint(dirpath=tmp_path / "a", monitor="val_loss", filename="{epoch}", save_last=True)
    fit(tmp_path, Scripted([0.5, 0.2]), first)
    moved = ModelCheckpoint(dirpath=tmp_path / "b", monitor="val_loss", filename="{epoch}")
    with pytest.warns(EmberWarning, match="dirpath changed"):
        fit(tmp_path, Scripted([0.5]), moved, max_epochs=2, ckpt_path=tmp_path / "a" / "last.ckpt")
    assert moved.best_model_path == str(tmp_path / "a" / "epoch=1.ckpt")
    assert moved.best_k_models == {} and moved.best_model_score is None
