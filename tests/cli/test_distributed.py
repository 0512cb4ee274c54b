"""``ember fit`` under DDP: launched by ember as a script is, and run as each rank under torchrun (slow)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RANKED = """
import os
from ember.testing.models import TinyModel


class RankedModel(TinyModel):
    def on_train_end(self):
        trainer = self.trainer
        line = f"RANK {trainer.global_rank} OF {trainer.world_size} SEED {os.environ['EMBER_GLOBAL_SEED']}"
        with open(f"rank_{trainer.global_rank}.txt", "w") as handle:  # a file each: ranks share stdout
            handle.write(line)
"""

LINE = re.compile(r"RANK (\d+) OF (\d+) SEED (\d+)")

CONFIG = """
trainer:
  max_epochs: 1
  limit_train_batches: 2
  limit_val_batches: 1
  accelerator: cpu
  strategy: ddp
  enable_progress_bar: false
  enable_model_summary: false
  logger: {csv_logger: {save_dir: logs}}
model: ranked.RankedModel
"""


def run(tmp_path: Path, *command: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "ranked.py").write_text(RANKED)
    (tmp_path / "run.yaml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_") and k not in ("RANK", "LOCAL_RANK")}
    env.update(PYTHONPATH=str(tmp_path), OMP_NUM_THREADS="1")
    return subprocess.run(list(command), capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)


def ranks(result: subprocess.CompletedProcess[str], folder: Path) -> list[list[str]]:
    text = " ".join(path.read_text() for path in sorted(folder.glob("rank_*.txt")))
    found = sorted(["RANK", rank, "OF", size, "SEED", seed] for rank, size, seed in LINE.findall(text))
    assert len(found) == 2, result.stdout[-2000:] + result.stderr[-3000:]
    return found


def test_ember_fit_launches_the_other_rank_as_a_script_does(tmp_path: Path) -> None:
    result = run(tmp_path, sys.executable, "-m", "ember", "fit", "--config", "run.yaml", "--trainer.devices", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    (rank0, rank1) = ranks(result, tmp_path)
    assert rank0[:4] == ["RANK", "0", "OF", "2"] and rank1[:4] == ["RANK", "1", "OF", "2"]
    assert rank0[-1] == rank1[-1]  # both ranks use the seed the launcher chose
    assert [p.name for p in (tmp_path / "logs").rglob("config*.yaml")] == ["config.yaml"]  # written once, by rank 0
    assert f"seed_everything: {rank0[-1]}" in next((tmp_path / "logs").rglob("config.yaml")).read_text()


def test_ember_fit_runs_as_each_rank_under_torchrun(tmp_path: Path) -> None:
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    result = run(tmp_path, *torchrun, "-m", "ember", "fit", "--config", "run.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    (rank0, rank1) = ranks(result, tmp_path)
    assert (rank0[1], rank1[1], rank0[3]) == ("0", "1", "2") and rank0[-1] == rank1[-1]
    assert [p.name for p in (tmp_path / "logs").rglob("config*.yaml")] == ["config.yaml"]
