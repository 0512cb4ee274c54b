"""Strict errors: exit code 2 before anything starts, naming the key, where it was set and what would be accepted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ember.cli import main


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``ember fit ARGS``; assert exit code 2 and that no log folder was made; return stderr."""
    assert main(["fit", *args]) == 2
    assert not Path("logs").exists() and not Path("ember_logs").exists()
    return capsys.readouterr().err


def with_line(run_yaml: Path, old: str, new: str) -> Path:
    run_yaml.write_text(run_yaml.read_text().replace(old, new, 1))
    return run_yaml


def test_an_unknown_key_in_a_file_names_file_line_and_the_closest_key(
    run_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_line(run_yaml, "patience: 3", "patince: 3")
    err = refused(capsys, "--config", str(run_yaml))
    assert f"unknown key 'patince' at trainer.callbacks[0].init_args.patince ({run_yaml}:12)" in err
    assert "did you mean `patience`?" in err and "EarlyStopping() accepts: check_finite" in err


def test_an_unknown_trainer_key_suggests_the_trainer_flag(run_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_line(run_yaml, "max_epochs: 2", "max_epoch: 2")
    err = refused(capsys, "--config", str(run_yaml))
    assert f"unknown key 'max_epoch' at trainer.max_epoch ({run_yaml}:3); did you mean `max_epochs`" in err


def test_an_unknown_flag_names_the_flag(run_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(capsys, "--config", str(run_yaml), "--model.init_args.lrr", "0.1")
    assert "unknown key 'lrr' at model.init_args.lrr (--model.init_args.lrr); did you mean `lr`?" in err


def test_an_unknown_top_level_key_lists_the_sections(run_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_yaml.write_text(run_yaml.read_text() + "trainr:\n  max_epochs: 1\n")
    err = refused(capsys, "--config", str(run_yaml))
    assert "unknown key 'trainr'" in err and "did you mean `trainer`?" in err


def test_a_wrong_type_names_the_expected_type(run_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_line(run_yaml, "max_epochs: 2", "max_epochs: two")
    err = refused(capsys, "--config", str(run_yaml))
    assert f"trainer.max_epochs ({run_yaml}:3) expects int | None, got 'two' (str)" in err


def test_a_quoted_number_is_not_coerced(run_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_line(run_yaml, "patience: 3", 'patience: "3"')
    err = refused(capsys, "--config", str(run_yaml))
    assert "trainer.callbacks[0].init_args.patience" in err and "expects int, got '3' (str)" in err


def test_a_wrong_type_from_a_flag_names_the_flag(run_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(capsys, "--config", str(run_yaml), "--trainer.callbacks.early_stopping.patience", "2.5")
    assert "(--trainer.callbacks.early_stopping.patience) expects int, got 2.5 (float)" in err


def test_an_unknown_plugin_name_lists_the_installed_ones(run_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(capsys, "--config", str(run_yaml), "--trainer.callbacks+=erly_stopping")
    assert "no plugin named 'erly_stopping' (--trainer.callbacks+); did you mean `early_stopping`?" in err
    assert "installed plugins: backbone_finetuning, batch_size_finder, csv_logger" in err


def test_a_plugin_missing_a_required_argument_says_how_to_set_it(
    run_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(capsys, "--config", str(run_yaml), "--trainer.callbacks+=early_stopping")
    assert "EarlyStopping() requires monitor; set it with --trainer.callbacks.monitor VALUE" in err


def test_a_class_that_is_not_a_module_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(capsys, "--model", "ember.testing.models.TinyDataModule")
    assert "model (--model): ember.testing.models.TinyDataModule is not a subclass of ember.core.module.Module" in err


def test_a_misspelled_class_suggests_the_class(capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(capsys, "--model", "ember.testing.models.TinyModle")
    assert "ember.testing.models has no class 'TinyModle' (--model); did you mean `TinyModel`" in err


def test_a_missing_config_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert "cannot read config file nothere.yaml" in refused(capsys, "--config", "nothere.yaml")


def test_a_duplicate_key_in_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "twice.yaml").write_text("trainer:\n  max_epochs: 1\n  max_epochs: 2\n")
    assert "twice.yaml:3: key 'max_epochs' appears twice" in refused(capsys, "--config", "twice.yaml")


def test_the_real_command_exits_two_with_the_message(ember: Any, run_yaml: Path, tmp_path: Path) -> None:
    with_line(run_yaml, "patience: 3", "patince: 3")
    result = ember("fit", "--config", str(run_yaml), cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert "ember fit: error: unknown key 'patince'" in result.stderr and "did you mean `patience`?" in result.stderr
    assert not (tmp_path / "logs").exists()


def test_a_run_without_a_model_says_how_to_give_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert "no model: give --model pkg.module.Class, or model: in a --config file" in refused(capsys)
