"""``ember.cli.CLI`` (also ``LightningCLI``) inside a user's script: fixed classes, extra arguments, links."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ember.cli import CLI, LightningCLI
from ember.testing.models import TinyDataModule, TinyModel

SCRIPT = """\
from ember.cli import LightningCLI
from ember.testing.models import TinyDataModule, TinyModel


class MyCLI(LightningCLI):
    def add_arguments_to_parser(self, parser):
        parser.add_argument("--notes", type=str, default="none")
        parser.link_arguments("data.batch_size", "model.batch_size")

    def after_fit(self):
        print("AFTER_FIT", self.model.hparams.batch_size, self.config.notes, self.trainer.current_epoch)


if __name__ == "__main__":
    MyCLI(TinyModel, TinyDataModule, trainer_defaults={"enable_progress_bar": False, "logger": False})
"""


class LinkedCLI(CLI):
    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_argument("--notes", type=str, default="none")
        parser.link_arguments("data.batch_size", "model.batch_size")


def test_lightning_cli_is_the_same_class() -> None:
    assert LightningCLI is CLI


def test_a_script_builds_the_same_command_line(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(SCRIPT)
    args = ["fit", "--data.batch_size", "4", "--trainer.max_epochs", "1", "--notes", "first try"]
    result = subprocess.run(
        [sys.executable, "train.py", *args], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "AFTER_FIT 4 first try 1" in result.stdout
    assert (tmp_path / "config.yaml").exists()  # logger=False: the log folder is default_root_dir


def test_fixed_classes_take_their_arguments_directly(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text("model:\n  lr: 0.2\ndata:\n  batch_size: 2\n")
    cli = CLI(TinyModel, TinyDataModule, args=["--config", "run.yaml"], run=False)
    assert (cli.model.hparams.lr, cli.datamodule.batch_size) == (0.2, 2)


def test_link_arguments_copies_a_value_from_data_to_model() -> None:
    cli = LinkedCLI(TinyModel, TinyDataModule, args=["--data.batch_size", "3"], run=False)
    assert cli.model.hparams.batch_size == 3 and cli.config.notes == "none"


def test_an_added_argument_is_typed(capsys: pytest.CaptureFixture[str]) -> None:
    cli = LinkedCLI(TinyModel, TinyDataModule, args=["--notes", "42"], run=False)
    assert cli.config.notes == "42"


def test_an_unknown_key_names_the_fixed_class(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        CLI(TinyModel, TinyDataModule, args=["--model.lrr", "1"], run=False)
    assert exit.value.code == 2
    assert "unknown key 'lrr' at model.lrr (--model.lrr); did you mean `lr`?" in capsys.readouterr().err


def test_trainer_defaults_apply_where_the_config_is_silent() -> None:
    cli = CLI(
        TinyModel, args=["--trainer.max_epochs", "2"], trainer_defaults={"max_epochs": 7, "max_steps": 5}, run=False
    )
    assert (cli.trainer.max_epochs, cli.trainer.max_steps) == (2, 5)
