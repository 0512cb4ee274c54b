"""torchrun --max-restarts: a rank killed with SIGKILL mid-epoch restarts the group, which resumes from the last
checkpoint and ends with the weights of a run that was never interrupted (gloo, 2 ranks, CPU)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

SCRIPT = """
import os, signal, sys
import torch
import ember
from ember.callbacks import ModelCheckpoint
from ember.testing import TinyModel


class KillRank1Once(ember.Callback):
    \"\"\"kill -9 of rank 1 at step 5 of the first attempt, one step after the step-4 checkpoint.\"\"\"

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT") == "0"
        if sys.argv[2] == "kill" and first_attempt and trainer.global_rank == 1 and trainer.global_step == 5:
            os.kill(os.getpid(), signal.SIGKILL)


root = sys.argv[1]
ember.seed_everything(7)
model = TinyModel()
trainer = ember.Trainer(
    strategy="ddp", accelerator="cpu", devices=2, max_epochs=3, logger=False, default_root_dir=root,
    callbacks=[ModelCheckpoint(dirpath=f"{root}/ckpts", every_n_train_steps=2, save_last=True), KillRank1Once()],
    enable_progress_bar=False, enable_model_summary=False,
)
trainer.fit(model, ckpt_path="last")
with open(f"{root}/ended_{trainer.global_rank}.txt", "w") as handle:
    handle.write(f"{os.environ['TORCHELASTIC_RESTART_COUNT']} {trainer.global_step} {trainer.ckpt_path}")
torch.save(model.state_dict(), f"{root}/weights_{trainer.global_rank}.pt")
"""


def torchrun(script: Path, root: Path, mode: str) -> subprocess.CompletedProcess[str]:
    root.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RESTART_COUNT"):
        env.pop(key, None)
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    command = [torchrun, "--nproc-per-node", "2", "--max-restarts", "1", "--standalone"]
    return subprocess.run(
        [*command, str(script), str(root), mode], capture_output=True, text=True, timeout=400, env=env, cwd=root
    )


def test_a_killed_rank_restarts_the_group_which_finishes_bitwise_equal(tmp_path: Path) -> None:
    script = tmp_path / "elastic.py"
    script.write_text(SCRIPT)
    killed = torchrun(script, tmp_path / "killed", "kill")
    assert killed.returncode == 0, killed.stderr[-3000:]
    for rank in (0, 1):  # the restarted group (attempt 1) finished, resumed from the last checkpoint
        attempt, step, resumed_from = (tmp_path / "killed" / f"ended_{rank}.txt").read_text().split(" ", 2)
        assert (attempt, step) == ("1", "12") and resumed_from.endswith("last.ckpt")
    plain = torchrun(script, tmp_path / "plain", "none")
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert (tmp_path / "plain" / "ended_0.txt").read_text().startswith("0 12 ")
    for rank in (0, 1):
        resumed = torch.load(tmp_path / "killed" / f"weights_{rank}.pt")
        uninterrupted = torch.load(tmp_path / "plain" / f"weights_{rank}.pt")
        assert resumed.keys() == uninterrupted.keys()
        for name in resumed:
            assert torch.equal(resumed[name], uninterrupted[name]), name
