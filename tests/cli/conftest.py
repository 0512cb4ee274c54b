"""What the ``ember fit`` tests share: a clean environment in a fresh folder, and a LightningCLI-style config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ember.core import discovery

#: A LightningCLI config whose class paths point at ember classes: trainer, model, data, seed, optimizer, scheduler.
LIGHTNING_STYLE = """\
seed_everything: 7
trainer:
  max_epochs: 2
  limit_val_batches: 2
  enable_progress_bar: false
  enable_model_summary: false
  logger:
    class_path: csv_logger
    init_args:
      save_dir: logs
  callbacks:
    - early_stopping: {monitor: val_loss, patience: 3}
    - class_path: lr_monitor
model:
  class_path: ember.testing.models.TinyModel
  init_args:
    lr: 0.05
data:
  class_path: ember.testing.models.TinyDataModule
  init_args:
    batch_size: 16
optimizer:
  class_path: torch.optim.Adam
  init_args:
    lr: 0.01
lr_scheduler:
  class_path: torch.optim.lr_scheduler.StepLR
  init_args:
    step_size: 1
ckpt_path: null
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No EMBER_* settings from outside, a fresh folder, and seeding's environment variables restored after."""
    for name in [n for n in os.environ if n.startswith("EMBER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("EMBER_GLOBAL_SEED", "0")
    monkeypatch.setenv("EMBER_SEED_WORKERS", "0")
    monkeypatch.chdir(tmp_path)
    discovery.clear_cache()


@pytest.fixture
def run_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(LIGHTNING_STYLE)
    return path


def _ember(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m ember ARGS`` in a subprocess, without the caller's EMBER_* settings."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ember", *args], capture_output=True, text=True, cwd=cwd, env=environment, timeout=600
    )


@pytest.fixture
def ember() -> Any:
    """``ember("fit", "--config", ...)`` runs the real command in a subprocess and returns the CompletedProcess."""
    return _ember
