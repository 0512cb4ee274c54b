"""A collective that only some ranks reach ends every rank within the timeout, naming who did not arrive.

Barriers, trainer.strategy.reduce/broadcast and DDP's gradient all-reduce in backward, with real
processes (2 gloo ranks, a 10 s timeout).
"""

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


"""

#: Two ranks, a 10 s timeout, CALLBACK and MODEL defined by the script above it.
RUN = """
trainer = ember.Trainer(
    strategy=DDPStrategy(timeout=timedelta(seconds=10)), accelerator="cpu", devices=2, max_epochs=1,
    callbacks=[CALLBACK()], logger=False, enable_checkpointing=False, enable_progress_bar=False,
    enable_model_summary=False, default_root_dir=sys.argv[1],
)
trainer.fit(MODEL())
print(f"rank {trainer.global_rank} finished", flush=True)
"""
SCRIPT += RUN.replace("CALLBACK", "OnlyRankZeroWaits").replace("MODEL", "TinyModel")


def clean_env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "EMBER_DDP_TIMEOUT"):
        env.pop(key, None)
    return env


def launch_by_ember(tmp_path: Path, source: str, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the script as strategy="ddp" does: rank 0 starts rank 1 and watches it."""
    script = tmp_path / "ranks.py"
    script.write_text(source)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=clean_env(),
        cwd=tmp_path,
    )
    return done, time.monotonic() - started


def test_a_barrier_on_rank_0_only_ends_the_run_naming_the_hook_plugin_and_missing_rank(tmp_path: Path) -> None:
    done, elapsed = launch_by_ember(tmp_path, SCRIPT)
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


def start_separately(
    tmp_path: Path, source: str, *args: str
) -> tuple[list[subprocess.Popen[str]], list[tuple[str, str]], float]:
    """Both ranks as on two machines: no launcher watches them, only the collectives' timeout can end them."""
    script = tmp_path / "ranks.py"
    script.write_text(source)
    common = {**clean_env(), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2"}
    started = time.monotonic()
    ranks = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), *args],
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
    # rank 1 went on to its next collective; each rank says where the other was waiting
    assert "ranks that did not arrive: [0]; rank 0 was waiting at barrier 'lonely' instead" in outputs[1][1]
    assert "rank 1 was waiting at" in outputs[0][1]
    assert elapsed < 90, f"took {elapsed:.0f} s with a 10 s timeout"


def test_ranks_started_separately_end_when_one_raises_in_a_hook(tmp_path: Path) -> None:
    ranks, outputs, elapsed = start_separately(tmp_path, RAISES_ON_RANK_1)
    assert [rank.returncode != 0 for rank in ranks] == [True, True], outputs
    assert "rank 1 failed in a hook" in outputs[1][1]
    assert "finished" not in outputs[0][0]
    assert elapsed < 90, f"took {elapsed:.0f} s with a 10 s timeout"


RANK_1_AWAY = """
import sys, time
from datetime import timedelta
import ember
from ember.strategies import DDPStrategy
from ember.testing import TinyModel

COLLECTIVE, AWAY = sys.argv[2], float(sys.argv[3])


class AwayOnRank1(TinyModel):
    def training_step(self, batch, batch_idx):
        if batch_idx == 3 and self.trainer.global_rank == 1:
            time.sleep(AWAY)  # past the timeout, without reaching backward
        return super().training_step(batch, batch_idx)


class RankZeroCommunicates(ember.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 3 and trainer.global_rank == 0 and COLLECTIVE == "reduce":
            trainer.strategy.reduce(batch[0].sum())
        if batch_idx == 3 and trainer.global_rank == 0 and COLLECTIVE == "broadcast":
            trainer.strategy.broadcast({"step": batch_idx})
""" + RUN.replace("CALLBACK", "RankZeroCommunicates").replace("MODEL", "AwayOnRank1")


@pytest.mark.parametrize("collective", ["reduce", "broadcast"])
def test_a_collective_on_rank_0_only_ends_the_run_naming_it_the_hook_and_the_missing_rank(
    tmp_path: Path, collective: str
) -> None:
    done, elapsed = launch_by_ember(tmp_path, RANK_1_AWAY, collective, "60")
    assert done.returncode != 0
    assert "finished" not in done.stdout
    assert f"CollectiveTimeoutError: rank 0 waited 0:00:10 at trainer.strategy.{collective}" in done.stderr
    assert "ranks that did not arrive: [1]" in done.stderr
    assert "hook 'on_train_batch_start' of plugin 'RankZeroCommunicates'" in done.stderr
    # 10 s timeout, 2.5 s for the other ranks' notes, 10 s for rank 1 to stop after SIGTERM, start-up
    assert elapsed < 55, f"took {elapsed:.0f} s with a 10 s timeout and rank 1 away for 60 s"


def test_a_rank_that_skips_backward_ends_the_gradient_all_reduce_naming_it(tmp_path: Path) -> None:
    ranks, outputs, elapsed = start_separately(tmp_path, RANK_1_AWAY, "none", "20")
    assert [rank.returncode != 0 for rank in ranks] == [True, True], outputs
    assert (
        "CollectiveTimeoutError: rank 0 waited 0:00:10 at DDP's gradient all-reduce in backward: "
        "ranks that did not arrive: [1]"
    ) in outputs[0][1]
    # back after 20 s, rank 1 finds rank 0 gone at once
    assert "CollectiveTimeoutError: rank 1 lost other ranks at DDP's gradient all-reduce in backward" in outputs[1][1]
    assert elapsed < 60, f"took {elapsed:.0f} s with a 10 s timeout and rank 1 away for 20 s"
