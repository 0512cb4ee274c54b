"""``ember fit``: a LightningCLI-style config runs as is, plugins are chosen and configured by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ember.cli import CLI, main
from ember.plugins.early_stopping import EarlyStopping
from ember.plugins.lr_monitor import LearningRateMonitor


def built(*args: str) -> CLI:
    """The objects ``ember fit ARGS`` would run, built without running them."""
    return CLI(args=list(args), run=False)


def test_a_lightning_style_config_runs_a_fit_in_a_subprocess(ember: Any, run_yaml: Path, tmp_path: Path) -> None:
    result = ember("fit", "--config", str(run_yaml), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    version = tmp_path / "logs" / "ember_logs" / "version_0"
    assert (version / "metrics.csv").exists() and (version / "config.yaml").exists()
    assert list((version / "checkpoints").glob("epoch=1-*.ckpt"))


def test_plugins_are_chosen_by_entry_point_name_with_their_arguments(run_yaml: Path) -> None:
    cli = built("--config", str(run_yaml))
    early, monitor = cli.trainer.callbacks[:2]
    assert isinstance(early, EarlyStopping) and (early.monitor, early.patience) == ("val_loss", 3)
    assert isinstance(monitor, LearningRateMonitor)
    assert type(cli.trainer.logger).__name__ == "CSVLogger"


def test_a_flag_sets_an_argument_of_a_plugin_by_name(run_yaml: Path) -> None:
    cli = built("--config", str(run_yaml), "--trainer.callbacks.early_stopping.patience", "5")
    assert cli.trainer.callbacks[0].patience == 5


def test_a_flag_names_a_plugin_that_is_not_in_the_config_yet(run_yaml: Path) -> None:
    cli = built("--config", str(run_yaml), "--trainer.callbacks.timer.interval", "epoch")
    assert type(cli.trainer.callbacks[2]).__name__ == "Timer" and cli.trainer.callbacks[2]._interval == "epoch"


def test_plus_equals_appends_a_plugin(run_yaml: Path) -> None:
    cli = built("--config", str(run_yaml), "--trainer.callbacks+=spike_detection")
    assert [type(c).__name__ for c in cli.trainer.callbacks[:3]] == [
        "EarlyStopping",
        "LearningRateMonitor",
        "SpikeDetection",
    ]


def test_an_argument_flag_after_plus_equals_sets_the_last_plugin_as_jsonargparse_does(run_yaml: Path) -> None:
    cli = built("--config", str(run_yaml), "--trainer.callbacks+=timer", "--trainer.callbacks.interval", "epoch")
    assert cli.trainer.callbacks[2]._interval == "epoch"


def test_the_logger_is_chosen_by_name_on_the_command_line(run_yaml: Path) -> None:
    cli = built("--config", str(run_yaml), "--trainer.logger", "tensorboard_logger", "--trainer.logger.save_dir", "tb")
    assert type(cli.trainer.logger).__name__ == "TensorBoardLogger"


def test_model_and_data_are_given_as_import_paths_with_dotted_overrides(tmp_path: Path) -> None:
    cli = built(
        "--model", "ember.testing.models:TinyModel", "--model.lr", "0.2",
        "--data", "ember.testing.models.TinyDataModule", "--data.init_args.batch_size", "4",
        "--trainer.max_epochs", "3",
    )  # fmt: skip
    assert (cli.model.hparams.lr, cli.datamodule.batch_size, cli.trainer.max_epochs) == (0.2, 4, 3)


def test_later_config_files_win_and_config_is_accepted_anywhere(run_yaml: Path, tmp_path: Path) -> None:
    override = tmp_path / "more.yaml"
    override.write_text("trainer:\n  max_epochs: 5\nmodel:\n  init_args:\n    lr: 0.5\n")
    cli = built("--trainer.max_epochs", "4", "--config", str(run_yaml), "--config", str(override))
    assert (cli.trainer.max_epochs, cli.model.hparams.lr, cli.datamodule.batch_size) == (5, 0.5, 16)


def test_optimizer_and_lr_scheduler_replace_configure_optimizers(run_yaml: Path) -> None:
    cli = built("--config", str(run_yaml), "--optimizer", "SGD", "--optimizer.lr", "0.3")
    configured = cli.model.configure_optimizers()
    assert type(configured["optimizer"]).__name__ == "SGD" and configured["optimizer"].defaults["lr"] == 0.3
    assert type(configured["lr_scheduler"]).__name__ == "StepLR"


def test_validate_runs_from_the_same_config(run_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", str(run_yaml)]) == 0
    assert "val_loss" in capsys.readouterr().out


def test_print_config_shows_every_value_with_its_origin_and_runs_nothing(
    run_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fit", "--config", str(run_yaml), "--trainer.max_epochs", "4", "--print_config"]) == 0
    out = capsys.readouterr().out
    assert "max_epochs: 4  # --trainer.max_epochs" in out
    assert f"limit_val_batches: 2  # {run_yaml}:4" in out
    assert "min_delta: 0.0  # default" in out  # a plugin's default argument
    assert "model_checkpoint (ember" in out  # the plugins a Trainer adds by default
    assert yaml.safe_load(out)["trainer"]["callbacks"][0]["init_args"]["patience"] == 3
    assert not (tmp_path / "logs").exists()


def test_ember_help_lists_the_run_commands(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--help"])
    out = capsys.readouterr().out
    assert all(f"    {name} " in out for name in ("fit", "validate", "test", "predict"))


def test_fit_help_lists_trainer_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--trainer.max_epochs" in out and "--trainer.callbacks+=lr_monitor" in out
