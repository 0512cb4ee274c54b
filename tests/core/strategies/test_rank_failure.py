"""A rank failing under strategy="ddp" ends rank 0 through its exception path: on_exception, flushed metrics.

Real processes (2 gloo ranks, launched by ember): rank 1 raises in training_step, while rank 0 is
either busy outside any collective (its watchdog interrupts it) or waiting in the gradient all-reduce.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = """
import sys, time
import ember
from ember.loggers import CSVLogger
from ember.testing import TinyModel

ROOT, RANK_0 = sys.argv[1], sys.argv[2]


class FailsOnRank1(TinyModel):
    def training_step(self, batch, batch_idx):
        if batch_idx == 3 and self.trainer.global_rank == 1:
            raise RuntimeError("rank 1 failed on purpose")
        return super().training_step(batch, batch_idx)


class Rank0(ember.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 3 and trainer.global_rank == 0 and RANK_0 == "busy":
            for _ in range(600):  # rank-0-only work (a plot, an upload) far longer than rank 1 takes to fail
                time.sleep(0.1)

    def on_exception(self, trainer, pl_module, exception):
        with open(f"{ROOT}/on_exception_{trainer.global_rank}.txt", "w") as handle:
            handle.write(f"{type(exception).__name__}: {exception}")


trainer = ember.Trainer(
    strategy="ddp", accelerator="cpu", devices=2, max_epochs=1, log_every_n_steps=1, callbacks=[Rank0()],
    logger=CSVLogger(ROOT), enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    default_root_dir=ROOT,
)
trainer.fit(FailsOnRank1())
print(f"rank {trainer.global_rank} finished", flush=True)
"""


@pytest.mark.parametrize(
    ("rank_0", "error"),
    [("busy", "RankFailedError"), ("in_all_reduce", "CollectiveTimeoutError")],
)
def test_rank_0_ends_through_on_exception_naming_the_failed_rank_with_its_metrics_flushed(
    tmp_path: Path, rank_0: str, error: str
) -> None:
    script = tmp_path / "fails_on_rank_1.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), rank_0],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    assert "finished" not in done.stdout
    seen = (tmp_path / "on_exception_0.txt").read_text()
    assert seen.startswith(f"{error}: "), seen
    assert "rank 1 exited with code 1" in seen
    assert "rank 1 failed on purpose" in (tmp_path / "on_exception_1.txt").read_text()
    [metrics] = tmp_path.glob("**/metrics.csv")
    rows = list(csv.DictReader(metrics.open()))
    assert [row["step"] for row in rows if row.get("train_loss")] == ["0", "1", "2"]
    assert elapsed < 50, f"took {elapsed:.0f} s; rank 0 was busy for 60 s"
