"""Reproducible runs: config.yaml in the log folder, with plugin versions; rerunning it gives bitwise-equal weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from ember.cli import main

VERSION = Path("logs/ember_logs")


def weights(version: int) -> dict[str, torch.Tensor]:
    (checkpoint,) = (VERSION / f"version_{version}" / "checkpoints").glob("*.ckpt")
    return torch.load(checkpoint, weights_only=False)["state_dict"]  # type: ignore[no-any-return]


def bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_every_run_writes_its_resolved_config_with_plugin_distributions(run_yaml: Path) -> None:
    assert main(["fit", "--config", str(run_yaml), "--trainer.max_epochs", "1"]) == 0
    text = (VERSION / "version_0" / "config.yaml").read_text()
    assert text.startswith("# written by ember ")
    assert "#   ember " in text and "early_stopping" in text.split("\n\n")[0]
    saved = yaml.safe_load(text)
    assert saved["trainer"]["max_epochs"] == 1 and saved["seed_everything"] == 7
    assert saved["trainer"]["callbacks"][0]["init_args"]["min_delta"] == 0.0  # defaults are written too


def test_a_random_seed_is_chosen_and_recorded(run_yaml: Path) -> None:
    run_yaml.write_text(run_yaml.read_text().replace("seed_everything: 7", "seed_everything: true"))
    assert main(["fit", "--config", str(run_yaml), "--trainer.max_epochs", "1"]) == 0
    seed = yaml.safe_load((VERSION / "version_0" / "config.yaml").read_text())["seed_everything"]
    assert isinstance(seed, int) and not isinstance(seed, bool)


def test_rerunning_the_saved_config_gives_bitwise_equal_weights(run_yaml: Path) -> None:
    run_yaml.write_text(run_yaml.read_text().replace("seed_everything: 7", "seed_everything: true"))
    assert main(["fit", "--config", str(run_yaml)]) == 0
    assert main(["fit", "--config", str(VERSION / "version_0" / "config.yaml")]) == 0
    assert bitwise_equal(weights(0), weights(1))
    assert not bitwise_equal(weights(0), torch.nn.Linear(32, 2).state_dict())


def test_a_run_never_fails_because_its_config_file_exists(run_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = ["--trainer.logger", "false", "--trainer.callbacks", "[]", "--trainer.enable_checkpointing", "false"]
    folder += ["--trainer.default_root_dir", "out", "--trainer.max_epochs", "1"]
    assert main(["fit", "--config", str(run_yaml), *folder]) == 0
    assert main(["fit", "--config", str(run_yaml), *folder]) == 0  # the same config: the file is kept as it is
    assert main(["fit", "--config", str(run_yaml), *folder, "--model.init_args.lr", "0.1"]) == 0
    assert sorted(p.name for p in Path("out").glob("config*.yaml")) == ["config.1.yaml", "config.yaml"]
    assert (
        "lr: 0.1" in Path("out/config.1.yaml").read_text()
        and "config written to out/config.1.yaml" in capsys.readouterr().err
    )


@pytest.mark.slow
def test_the_saved_config_reruns_to_bitwise_equal_weights_in_a_new_process(
    ember: Any, run_yaml: Path, tmp_path: Path
) -> None:
    run_yaml.write_text(run_yaml.read_text().replace("seed_everything: 7", "seed_everything: true"))
    first = ember("fit", "--config", str(run_yaml), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    saved = tmp_path / VERSION / "version_0" / "config.yaml"
    second = ember("fit", "--config", str(saved), cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert bitwise_equal(weights(0), weights(1))
