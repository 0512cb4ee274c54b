"""A collective that only some ranks reach ends every rank within the timeout, naming who did not arrive."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ember.core.strategies.ddp import _free_port

pytestmark = pytest.mark.slow

SCRIPT = """
import sys
from datetime import timedelta
import ember
from ember.strategies import DDPStrategy
from ember.testing import TinyModel


class OnlyRankZeroWaits(ember.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx == 2 and trainer.global_rank == 0:
            trainer.strategy.barrier("lonely")


trainer = ember.Trainer(
    strategy=DDPStrategy(timeout=timedelta(seconds=10)), accelerator="cpu", devices=2, max_epochs=1,
    callbacks=[OnlyRankZeroWaits()], logger=False, enable_checkpointing=False, enable_progress_bar=False,
    enable_model_summary=False, default_root_dir=sys.argv[1],
)
trainer.fit(TinyModel())
print(f"rank {trainer.global_rank} finished", flush=True)
"""


def clean_env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "EMBER_DDP_TIMEOUT"):
        env.pop(key, None)
    return env


def test_a_barrier_on_rank_0_only_ends_the_run_naming_the_hook_plugin_and_missing_rank(tmp_path: Path) -> None:
    script = tmp_path / "lonely_barrier.py"
    script.write_text(SCRIPT)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        env=clean_env(),
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    assert "finished" not in done.stdout
    assert "CollectiveTimeoutError" in done.stderr
    assert "barrier 'lonely'" in done.stderr
    assert "ranks that did not arrive: [1]" in done.stderr
    assert "hook 'on_train_batch_end'" in done.stderr and "OnlyRankZeroWaits" in done.stderr
    assert elapsed < 90, f"took {elapsed:.0f} s with a 10 s timeout"


RAISES_ON_RANK_1 = SCRIPT.replace(
    """        if batch_idx == 2 and trainer.global_rank == 0:
            trainer.strategy.barrier("lonely")""",
    """        if batch_idx == 2 and trainer.global_rank == 1:
            raise RuntimeError("rank 1 failed in a hook")""",
)


def start_separately(tmp_path: Path, source: str) -> tuple[list[subprocess.Popen[str]], list[tuple[str, str]], float]:
    """Both ranks as on two machines: no launcher watches them, only the collectives' timeout can end them."""
    script = tmp_path / "ranks.py"
    script.write_text(source)
    common = {**clean_env(), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2"}
    started = time.monotonic()
    ranks = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path)],
            env={**common, "RANK": str(rank), "LOCAL_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for rank in (0, 1)
    ]
    outputs = [rank.communicate(timeout=180) for rank in ranks]
    return ranks, outputs, time.monotonic() - started


def test_ranks_started_separately_end_on_their_own_when_one_skips_a_barrier(tmp_path: Path) -> None:
    ranks, outputs, elapsed = start_separately(tmp_path, SCRIPT)
    assert [rank.returncode != 0 for rank in ranks] == [True, True], outputs
    assert "ranks that did not arrive: [1]" in outputs[0][1]
    assert elapsed < 90, f"took {elapsed:.0f} s with a 10 s timeout"


def test_ranks_started_separately_end_when_one_raises_in_a_hook(tmp_path: Path) -> None:
    ranks, outputs, elapsed = start_separately(tmp_path, RAISES_ON_RANK_1)
    assert [rank.returncode != 0 for rank in ranks] == [True, True], outputs
    assert "rank 1 failed in a hook" in outputs[1][1]
    assert "finished" not in outputs[0][0]
    assert elapsed < 90, f"took {elapsed:.0f} s with a 10 s timeout"
