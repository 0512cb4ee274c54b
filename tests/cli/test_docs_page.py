"""docs/cli.md runs: its example config with each documented command, and its error examples print as shown."""

from __future__ import annotations

import difflib
import re
import shlex
from pathlib import Path

import pytest

from ember.cli import main

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", PAGE.read_text(), re.S | re.M)


@pytest.fixture
def example_config(tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(blocks("yaml")[0])
    return path


def test_the_example_config_has_model_data_three_plugins_and_a_logger(example_config: Path) -> None:
    import yaml

    config = yaml.safe_load(example_config.read_text())
    assert {"model", "data"} <= config.keys() and len(config["trainer"]["callbacks"]) == 3
    assert "csv_logger" in config["trainer"]["logger"]


def test_each_documented_command_runs(example_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for line in blocks("bash")[0].strip().splitlines():
        command = shlex.split(line)
        assert command[0] == "ember"
        assert main(command[1:]) == 0, (line, capsys.readouterr().err[-3000:])
    assert len(list(Path("logs/ember_logs/version_0/checkpoints").glob("*.ckpt"))) == 2  # save_top_k: 2


def test_the_documented_errors_are_printed_as_shown(example_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = blocks("text")[0].splitlines()
    for index, line in enumerate(text):
        if not line.startswith("$ ember"):
            continue
        command, _, comment = line[2:].partition("#")
        edit = re.search(r'"(\w+): (\w+)"', comment)
        if edit:
            original = example_config.read_text()
            wrong, value = edit.groups()
            right = difflib.get_close_matches(wrong, re.findall(r"(\w+): " + value, original))[0]
            example_config.write_text(original.replace(f"{right}: {value}", f"{wrong}: {value}", 1))
        assert main(shlex.split(command)[1:]) == 2
        assert capsys.readouterr().err.splitlines()[0] == text[index + 1]
        if edit:
            example_config.write_text(original)
