"""CSVLogger: metrics.csv rows as Lightning's CSVLogger writes them for the same run, hparams.yaml, versions."""

from __future__ import annotations

import csv
from argparse import Namespace
from pathlib import Path

import pytest
import torch
import yaml

from ember.callbacks import ModelCheckpoint
from ember.core.rank import rank_zero_only
from ember.errors import EmberWarning
from ember.loggers import CSVLogger
from ember.testing import TinyModel


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# The rows pytorch-lightning 2.6.6's CSVLogger writes for the same runs (checked side by side).
ROWS_EVERY_STEP = """\
a_epoch,a_step,b,epoch,step,val
,1.0,,0,0,
,5.0,,0,1,
,9.0,,0,2,
,13.0,,0,3,
,,,0,3,2003.0
7.0,,70.0,0,3,
,1.0,,1,4,
,5.0,,1,5,
,9.0,,1,6,
,13.0,,1,7,
,,,1,7,2003.0
7.0,,70.0,1,7,
"""

ROWS_EVERY_2_STEPS = """\
a_epoch,a_step,b,epoch,step,val
,5.0,,0,1,
,13.0,,0,3,
,,,0,3,2003.0
7.0,,70.0,0,3,
,5.0,,1,5,
,13.0,,1,7,
,,,1,7,2003.0
7.0,,70.0,1,7,
"""


@pytest.mark.parametrize(("every", "expected"), [(1, ROWS_EVERY_STEP), (2, ROWS_EVERY_2_STEPS)])
def test_rows_match_lightning_for_step_epoch_and_validation_metrics(
    trainer_factory, counting_model, tmp_path, every, expected
) -> None:
    trainer = trainer_factory(logger=CSVLogger(tmp_path), log_every_n_steps=every, num_sanity_val_steps=0)
    trainer.fit(counting_model())
    assert (tmp_path / "ember_logs" / "version_0" / "metrics.csv").read_text() == expected


def test_validation_step_metrics_get_their_own_rows_counted_per_validation_batch(
    trainer_factory, counting_model, tmp_path
) -> None:
    trainer = trainer_factory(logger=CSVLogger(tmp_path), log_every_n_steps=4, num_sanity_val_steps=2)
    trainer.fit(counting_model(val_step_metric=True))
    text = (tmp_path / "ember_logs" / "version_0" / "metrics.csv").read_text()
    # the sanity check logs nothing; validation batches count on across the fit; no epoch key
    assert text == (
        "a_epoch,a_step,b,epoch,step,val,vs_epoch,vs_step\n"
        ",13.0,,0,3,,,\n"
        ",,,,0,,,2001.0\n"
        ",,,,1,,,2005.0\n"
        ",,,0,3,2003.0,2003.0,\n"
        "7.0,,70.0,0,3,,,\n"
        ",13.0,,1,7,,,\n"
        ",,,,2,,,2001.0\n"
        ",,,,3,,,2005.0\n"
        ",,,1,7,2003.0,2003.0,\n"
        "7.0,,70.0,1,7,,,\n"
    )


def test_with_accumulation_only_batches_that_step_the_optimizer_log(trainer_factory, counting_model, tmp_path) -> None:
    trainer = trainer_factory(
        logger=CSVLogger(tmp_path), log_every_n_steps=1, accumulate_grad_batches=2, num_sanity_val_steps=0
    )
    trainer.fit(counting_model())
    rows = read_rows(tmp_path / "ember_logs" / "version_0" / "metrics.csv")
    steps = [(row["step"], row["a_step"] or row["val"] or row["a_epoch"]) for row in rows]
    assert steps == [
        ("0", "5.0"),
        ("1", "13.0"),
        ("1", "2003.0"),
        ("1", "7.0"),
        ("2", "5.0"),
        ("3", "13.0"),
        ("3", "2003.0"),
        ("3", "7.0"),
    ]


def test_a_metric_first_logged_at_epoch_end_adds_a_column_and_is_flushed_when_the_run_ends(
    trainer_factory, counting_model, tmp_path
) -> None:
    logger = CSVLogger(tmp_path, flush_logs_every_n_steps=1)  # rows are on disk before "ee" appears
    trainer = trainer_factory(logger=logger, log_every_n_steps=2, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(counting_model(epoch_end_metric=True))
    path = Path(logger.metrics_file_path)
    assert path.read_text() == (
        "a_epoch,a_step,b,ee,epoch,step\n"
        ",5.0,,,0,1\n"
        ",13.0,,,0,3\n"
        "7.0,,70.0,0.5,0,3\n"
        ",5.0,,,1,5\n"
        ",13.0,,,1,7\n"
        "7.0,,70.0,1.5,1,7\n"
    )


def test_buffered_rows_reach_the_file_when_the_run_ends(trainer_factory, counting_model, tmp_path) -> None:
    logger = CSVLogger(tmp_path, flush_logs_every_n_steps=1000)
    trainer_factory(logger=logger, log_every_n_steps=1, max_epochs=1, limit_val_batches=0).fit(counting_model())
    assert [row["step"] for row in read_rows(Path(logger.metrics_file_path))] == ["0", "1", "2", "3", "3"]


def test_rows_are_written_every_flush_logs_every_n_steps(tmp_path) -> None:
    logger = CSVLogger(tmp_path, flush_logs_every_n_steps=3)
    for step in range(5):
        logger.log_metrics({"loss": float(step)}, step=step)
    assert [row["loss"] for row in read_rows(Path(logger.metrics_file_path))] == ["0.0", "1.0", "2.0"]
    logger.finalize("success")
    assert len(read_rows(Path(logger.metrics_file_path))) == 5


def test_metrics_and_hparams_go_under_save_dir_name_version(trainer_factory, tmp_path) -> None:
    trainer = trainer_factory(logger=CSVLogger(tmp_path), max_epochs=1, log_every_n_steps=4)
    trainer.fit(TinyModel(lr=0.01))
    folder = tmp_path / "ember_logs" / "version_0"
    assert trainer.log_dir == str(folder)
    assert yaml.safe_load((folder / "hparams.yaml").read_text()) == {"features": 32, "lr": 0.01, "batch_size": 8}
    rows = read_rows(folder / "metrics.csv")
    assert list(rows[0]) == ["epoch", "step", "train_loss", "val_loss"]
    assert [(row["step"], bool(row["train_loss"]), bool(row["val_loss"])) for row in rows] == [
        ("3", True, False),
        ("7", True, False),
        ("7", False, True),
    ]
    assert float(rows[2]["val_loss"]) == pytest.approx(trainer.callback_metrics["val_loss"].item())


def test_versions_count_up_from_the_highest_version_folder(trainer_factory, tmp_path) -> None:
    for _ in range(2):
        trainer_factory(logger=True, max_epochs=1, limit_train_batches=1, limit_val_batches=1).fit(TinyModel())
    assert sorted(p.name for p in (tmp_path / "ember_logs").iterdir()) == ["version_0", "version_1"]
    (tmp_path / "ember_logs" / "version_7").mkdir()
    (tmp_path / "ember_logs" / "version_x").mkdir()
    (tmp_path / "ember_logs" / "version_9").write_text("a file, not a version folder")
    assert CSVLogger(tmp_path).version == 8


def test_a_string_version_names_the_folder_and_no_name_puts_versions_in_save_dir(tmp_path) -> None:
    assert CSVLogger(tmp_path, version="run-a").log_dir == str(tmp_path / "ember_logs" / "run-a")
    assert CSVLogger(tmp_path, name=None).log_dir == str(tmp_path / "version_0")
    assert CSVLogger(tmp_path, name="exp", version=3).log_dir == str(tmp_path / "exp" / "version_3")


def test_log_metrics_outside_a_trainer_numbers_rows_prefixes_names_and_unwraps_tensors(tmp_path) -> None:
    logger = CSVLogger(tmp_path, prefix="run")
    logger.log_metrics({"loss": torch.tensor(0.5)})
    logger.log_metrics({"loss": 0.25, "acc": 1})
    logger.finalize("success")
    assert Path(logger.metrics_file_path).read_text() == "run-acc,run-loss,step\n,0.5,0\n1,0.25,1\n"


def test_hyperparameters_accept_a_namespace_and_values_yaml_cannot_hold(tmp_path) -> None:
    logger = CSVLogger(tmp_path)
    logger.log_hyperparams(Namespace(lr=0.1, layers=[4, 2]))
    logger.log_hyperparams({"activation": torch.nn.ReLU, "nested": {"depth": 3}})
    saved = yaml.safe_load((Path(logger.log_dir) / "hparams.yaml").read_text())
    assert saved == {
        "lr": 0.1,
        "layers": [4, 2],
        "activation": "<class 'torch.nn.modules.activation.ReLU'>",
        "nested": {"depth": 3},
    }


def test_an_earlier_runs_metrics_file_is_overwritten_with_a_warning(tmp_path) -> None:
    folder = tmp_path / "ember_logs" / "version_0"
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text("old,step\n1,0\n")
    logger = CSVLogger(tmp_path, version=0)
    logger.log_metrics({"new": 2.0}, step=0)
    with pytest.warns(EmberWarning, match="exists from an earlier run"):
        logger.save()
    assert (folder / "metrics.csv").read_text() == "new,step\n2.0,0\n"


def test_on_other_ranks_nothing_is_written(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    logger = CSVLogger(tmp_path, flush_logs_every_n_steps=1)
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.finalize("success")
    assert not (tmp_path / "ember_logs").exists()


def test_experiment_is_the_writer_of_metrics_csv_and_hparams_yaml(trainer_factory, counting_model, tmp_path) -> None:
    class WritesDirectly(counting_model):  # type: ignore[misc, valid-type]
        def on_train_end(self) -> None:
            self.logger.experiment.log_hparams({"source": "experiment"})
            self.logger.experiment.log_metrics({"extra": 42.0}, step=99)
            self.logger.experiment.save()

    logger = CSVLogger(tmp_path)
    trainer_factory(logger=logger, max_epochs=1, limit_val_batches=0, log_every_n_steps=4).fit(WritesDirectly())
    assert logger.experiment.metrics_file_path == logger.metrics_file_path
    rows = read_rows(Path(logger.metrics_file_path))
    assert (rows[-1]["extra"], rows[-1]["step"]) == ("42.0", "99")
    assert yaml.safe_load((Path(logger.log_dir) / "hparams.yaml").read_text()) == {"source": "experiment"}


def test_experiment_on_other_ranks_does_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    experiment = CSVLogger(tmp_path).experiment
    experiment.log_metrics({"loss": 1.0})
    experiment.save()
    assert not (tmp_path / "ember_logs").exists()


@pytest.mark.parametrize(
    "saving",
    [
        {"every_n_epochs": 1},
        {"every_n_train_steps": 3},
        {"monitor": "val", "mode": "max", "save_on_train_epoch_end": False},
    ],
    ids=["epoch-end", "mid-epoch", "after-validation"],
)
@pytest.mark.filterwarnings("ignore:checkpoint directory .* exists and is not empty")
def test_a_run_resumed_into_its_version_folder_continues_metrics_csv_without_duplicates(
    trainer_factory, counting_model, tmp_path, saving
) -> None:
    flags = dict(max_epochs=3, log_every_n_steps=1, num_sanity_val_steps=0)
    trainer_factory(logger=CSVLogger(tmp_path / "whole"), **flags).fit(counting_model(epoch_end_metric=True))
    whole = (tmp_path / "whole" / "ember_logs" / "version_0" / "metrics.csv").read_text()

    checkpoints = ModelCheckpoint(tmp_path / "ckpt", save_top_k=-1, **saving)
    first = trainer_factory(logger=CSVLogger(tmp_path / "cut"), callbacks=[checkpoints], **flags)
    first.fit(counting_model(epoch_end_metric=True))
    middle = sorted((tmp_path / "ckpt").iterdir(), key=lambda path: path.stat().st_mtime_ns)[1]
    checkpoints = ModelCheckpoint(tmp_path / "ckpt", save_top_k=-1, **saving)
    again = trainer_factory(logger=CSVLogger(tmp_path / "cut", version=0), callbacks=[checkpoints], **flags)
    again.fit(counting_model(epoch_end_metric=True), ckpt_path=middle)
    continued = (tmp_path / "cut" / "ember_logs" / "version_0" / "metrics.csv").read_text()
    assert steps_and_epochs(continued) == steps_and_epochs(whole)  # no row lost, none twice
    if "every_n_epochs" in saving:  # resumed mid-epoch, the epoch's means cover only the batches after resuming
        assert continued == whole


def steps_and_epochs(text: str) -> list[tuple[str, str]]:
    return [(row["step"], row["epoch"]) for row in csv.DictReader(text.splitlines())]


def test_rows_reach_the_file_at_every_epoch_end(trainer_factory, counting_model, tmp_path) -> None:
    logger = CSVLogger(tmp_path, flush_logs_every_n_steps=1000)
    on_disk = []

    class Watching(counting_model):  # type: ignore[misc, valid-type]
        def on_train_epoch_start(self) -> None:
            on_disk.append(len(read_rows(Path(logger.metrics_file_path))) if self.current_epoch else 0)

    trainer_factory(logger=logger, max_epochs=3, log_every_n_steps=1, limit_val_batches=0).fit(Watching())
    assert on_disk == [0, 5, 10]  # four step rows and one epoch row per epoch


def test_rows_reach_the_file_at_every_checkpoint(trainer_factory, counting_model, tmp_path) -> None:
    logger = CSVLogger(tmp_path, flush_logs_every_n_steps=1000)
    on_disk = []

    class Counting(ModelCheckpoint):
        def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
            on_disk.append((checkpoint["global_step"], checkpoint["loggers"]["CSVLogger"]["rows"]))

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if on_disk:
                assert len(read_rows(Path(logger.metrics_file_path))) >= on_disk[-1][1]

    checkpoint = Counting(tmp_path / "ckpt", every_n_train_steps=2, save_top_k=-1)
    trainer_factory(logger=logger, callbacks=[checkpoint], max_epochs=1, log_every_n_steps=1, limit_val_batches=0).fit(
        counting_model()
    )
    assert on_disk == [(2, 1), (4, 3)]  # saved in on_train_batch_end, before that batch's row is logged
