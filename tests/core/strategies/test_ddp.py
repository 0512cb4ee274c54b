"""DDP with real processes on CPU (gloo, 2 ranks): launched by ember, by ddp_spawn and by torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import json, sys
import torch
import ember
from ember.callbacks import EarlyStopping, ModelCheckpoint
from ember.testing import TinyModel


class Model(TinyModel):
    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("rank_value", float(self.trainer.global_rank), on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        # rank 1 never improves, rank 0 always does: any rank's stop decision stops everyone
        value = 1.0 if self.trainer.global_rank == 1 else -float(self.current_epoch)
        self.log("watched", value)


class Seen(ember.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        pl_module.epochs_started = getattr(pl_module, "epochs_started", []) + [trainer.current_epoch]


def main(mode, strategy, devices, root, **options):
    ember.seed_everything(1)
    ckpt_path = options.pop("ckpt_path", None)
    callbacks = [Seen()]
    if mode == "early_stop":
        callbacks.append(EarlyStopping(monitor="watched", patience=1))
    model = Model()
    trainer = ember.Trainer(
        strategy=strategy, accelerator="cpu", devices=devices, max_epochs=options.pop("max_epochs", 2),
        callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False, default_root_dir=root,
        logger=mode == "checkpoint", enable_checkpointing=mode in ("checkpoint", "early_stop"), **options,
    )
    trainer.fit(model, ckpt_path=ckpt_path)
    rank = trainer.global_rank
    torch.save(model.state_dict(), f"{root}/weights_{rank}.pt")
    result = {
        "rank": rank, "world": trainer.world_size, "epoch": trainer.current_epoch, "step": trainer.global_step,
        "batches": trainer.num_training_batches, "rank_value": float(trainer.callback_metrics["rank_value"]),
        "epochs_started": getattr(model, "epochs_started", []),
        "best": trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else None,
    }
    with open(f"{root}/result_{rank}.json", "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    mode, strategy, devices, root = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    options = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    main(mode, strategy, devices, root, **options)
"""


def run_script(
    tmp_path: Path, *args: str, launcher: list[str] | None = None, timeout: int = 240
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "ddp_script.py"
    script.write_text(SCRIPT)
    command = (launcher or [sys.executable]) + [str(script), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)


def results(root: Path) -> list[dict]:
    return [
        json.loads((root / f"result_{rank}.json").read_text())
        for rank in (0, 1)
        if (root / f"result_{rank}.json").exists()
    ]


def weights(root: Path, rank: int) -> dict[str, torch.Tensor]:
    return torch.load(root / f"weights_{rank}.pt")


def test_ddp_launched_by_ember_trains_identical_replicas_on_shards(tmp_path: Path) -> None:
    done = run_script(tmp_path, "plain", "ddp", "2", str(tmp_path))
    assert done.returncode == 0, done.stderr
    first, second = results(tmp_path)
    assert (first["world"], second["world"]) == (2, 2)
    assert first["batches"] == second["batches"] == 4  # 8 batches split over 2 ranks
    assert first["rank_value"] == second["rank_value"] == 0.5  # sync_dist mean of ranks 0 and 1
    a, b = weights(tmp_path, 0), weights(tmp_path, 1)
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_ddp_writes_one_checkpoint_file_per_save(tmp_path: Path) -> None:
    done = run_script(tmp_path, "checkpoint", "ddp", "2", str(tmp_path))
    assert done.returncode == 0, done.stderr
    checkpoints = sorted(p.name for p in tmp_path.rglob("*.ckpt"))
    assert checkpoints == ["epoch=1-step=8.ckpt"]
    first, second = results(tmp_path)
    assert first["best"] == second["best"] and first["best"].endswith("epoch=1-step=8.ckpt")
    assert len(list(tmp_path.rglob("events.out.tfevents.*"))) == 1  # loggers write once


def test_early_stopping_ends_both_ranks_on_the_same_epoch(tmp_path: Path) -> None:
    done = run_script(tmp_path, "early_stop", "ddp", "2", str(tmp_path), '{"max_epochs": 10}')
    assert done.returncode == 0, done.stderr
    first, second = results(tmp_path)
    assert first["epoch"] == second["epoch"] < 10
    assert first["step"] == second["step"]


@pytest.mark.parametrize("devices", [1, 2])
def test_resume_from_a_ddp_checkpoint(tmp_path: Path, devices: int) -> None:
    trained = tmp_path / "trained"
    trained.mkdir()
    done = run_script(trained, "checkpoint", "ddp", "2", str(trained))
    assert done.returncode == 0, done.stderr
    checkpoint = next(trained.rglob("*.ckpt"))
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    options = json.dumps({"max_epochs": 3, "ckpt_path": str(checkpoint)})
    done = run_script(resumed, "plain", "ddp", str(devices), str(resumed), options)
    assert done.returncode == 0, done.stderr
    outcome = results(resumed)
    assert len(outcome) == devices
    for result in outcome:
        assert result["epochs_started"] == [2] and result["epoch"] == 3
        assert result["step"] == 8 + 8 // devices


def test_an_exception_on_rank_1_ends_every_rank(tmp_path: Path) -> None:
    failing = SCRIPT.replace(
        "        loss = super().training_step(batch, batch_idx)\n",
        "        if self.trainer.global_rank == 1 and batch_idx == 2:\n"
        "            raise RuntimeError('rank 1 failed on purpose')\n"
        "        loss = super().training_step(batch, batch_idx)\n",
    ).replace(
        "class Seen(ember.Callback):",
        "class Seen(ember.Callback):\n    def on_exception(self, trainer, pl_module, exception):\n        print(f'on_exception rank {trainer.global_rank}', flush=True)\n",
    )
    (tmp_path / "ddp_script.py").write_text(failing)
    env = dict(os.environ)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "ddp_script.py"), "plain", "ddp", "2", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "rank 1 failed on purpose" in done.stderr
    assert "on_exception rank 1" in done.stdout
    assert results(tmp_path) == []


def test_ddp_spawn_leaves_the_trained_model_in_the_calling_process(tmp_path: Path) -> None:
    done = run_script(tmp_path, "plain", "ddp_spawn", "2", str(tmp_path))
    assert done.returncode == 0, done.stderr
    (only,) = results(tmp_path)  # code after fit runs in the calling process only
    assert only["rank"] == 0 and only["world"] == 2 and only["rank_value"] == 0.5


def test_the_readme_example_under_torchrun(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    example = example.replace(
        "enable_progress_bar=False)", "enable_progress_bar=False, strategy='ddp', accelerator='cpu')"
    )
    example += "\nprint('done on rank', trainer.global_rank, 'of', trainer.world_size)\n"
    script = tmp_path / "readme_example.py"
    script.write_text(textwrap.dedent(example))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "done on rank 0 of 2" in done.stdout and "done on rank 1 of 2" in done.stdout
    assert done.stdout.count("training starts") == 2


# ------------------------------------------------ ddp_spawn, ddp_fork: every rank a child
CALLER_SCRIPT = """
import atexit, json, os, sys
import torch
import ember
from ember.callbacks import ModelCheckpoint
from ember.testing import TinyModel

MARKS = []  # filled by the caller before fit: a forked rank sees it, a fresh interpreter does not


class Failing(TinyModel):
    def training_step(self, batch, batch_idx):
        if self.trainer.global_rank == 1 and batch_idx == 1:
            raise ValueError("rank 1 failed on purpose")
        return super().training_step(batch, batch_idx)


class Counts(ember.Callback):
    def __init__(self):
        self.batches, self.marks, self.pid = 0, None, None

    def on_fit_start(self, trainer, pl_module):
        self.marks, self.pid = len(MARKS), os.getpid()
        mark = os.path.join(trainer.default_root_dir, f"atexit-{trainer.global_rank}")
        atexit.register(lambda: open(mark, "w").close())  # a rank's exit handlers run when it ends

    def on_train_batch_end(self, *args):
        self.batches += 1

    def state_dict(self):
        return {"batches": self.batches, "marks": self.marks, "pid": self.pid}

    def load_state_dict(self, state):
        self.batches, self.marks, self.pid = state["batches"], state["marks"], state["pid"]


if __name__ == "__main__":
    strategy, root, fail = sys.argv[1], sys.argv[2], sys.argv[3] == "fail"
    MARKS.append("caller")
    environ = dict(os.environ)
    model = Failing() if fail else TinyModel()
    initial = {key: value.clone() for key, value in model.state_dict().items()}
    counts, checkpoint = Counts(), ModelCheckpoint()
    trainer = ember.Trainer(
        strategy=strategy, accelerator="cpu", devices=2, max_epochs=2, callbacks=[counts, checkpoint],
        enable_progress_bar=False, enable_model_summary=False, logger=False, default_root_dir=root,
    )
    outcome = {}
    try:
        trainer.fit(model)
    except ValueError as error:
        outcome["caught"] = str(error)
    outcome["environ_unchanged"] = dict(os.environ) == environ
    if "caught" not in outcome:
        torch.save(trainer.model, os.path.join(root, "model.pt"))
        outcome.update(
            batches=counts.batches, marks=counts.marks, other_process=counts.pid != os.getpid(),
            trained=any(not torch.equal(initial[key], value) for key, value in model.state_dict().items()),
            plain_module=trainer.model is model, step=trainer.global_step, epoch=trainer.current_epoch,
            best=checkpoint.best_model_path, val_loss=float(trainer.callback_metrics["val_loss"]),
        )
    with open(os.path.join(root, "outcome.json"), "w") as handle:
        json.dump(outcome, handle)
"""


def run_caller(tmp_path: Path, strategy: str, fail: bool = False) -> dict:
    script = tmp_path / "caller.py"
    script.write_text(CALLER_SCRIPT)
    env = {key: value for key, value in os.environ.items() if key not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, str(script), strategy, str(tmp_path), "fail" if fail else "ok"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return json.loads((tmp_path / "outcome.json").read_text())


@pytest.mark.parametrize(("strategy", "fresh"), [("ddp_spawn", True), ("ddp_fork", False), ("ddp_notebook", False)])
def test_every_rank_runs_in_a_child_and_the_caller_gets_the_results_back(
    tmp_path: Path, strategy: str, fresh: bool
) -> None:
    outcome = run_caller(tmp_path, strategy)
    assert outcome["other_process"] and outcome["marks"] == (0 if fresh else 1)  # spawn: a fresh interpreter
    assert outcome["trained"] and outcome["batches"] == 8  # rank 0's 4 batches of each of 2 epochs
    assert (outcome["step"], outcome["epoch"]) == (8, 2)
    assert outcome["best"].endswith("epoch=1-step=8.ckpt") and Path(outcome["best"]).is_file()
    assert outcome["val_loss"] > 0
    assert outcome["environ_unchanged"] and outcome["plain_module"]
    assert isinstance(torch.load(tmp_path / "model.pt", weights_only=False), torch.nn.Module)
    # a spawned rank runs its exit handlers and ends before the interpreter's teardown; a forked one, like any
    # multiprocessing fork child, ends without them
    assert sorted(path.name for path in tmp_path.glob("atexit-*")) == (["atexit-0", "atexit-1"] if fresh else [])


@pytest.mark.parametrize("strategy", ["ddp_spawn", "ddp_fork"])
def test_a_failing_rank_raises_its_exception_in_the_caller(tmp_path: Path, strategy: str) -> None:
    outcome = run_caller(tmp_path, strategy, fail=True)
    assert outcome == {"caught": "rank 1 failed on purpose", "environ_unchanged": True}


def test_ddp_fork_on_cuda_is_refused_naming_the_strategies_that_work() -> None:
    from ember.core.strategies.ddp import DDPStrategy
    from ember.errors import MisconfigurationError

    with pytest.raises(MisconfigurationError, match="ddp_spawn"):
        DDPStrategy("cuda", [0, 1], start_method="fork")
