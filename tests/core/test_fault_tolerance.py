"""Crashes as a user meets them: real processes killed with SIGKILL mid-epoch and mid-save, then resumed.

The model (dropout, a shuffled loader, Adam and a per-step scheduler) is test_resume.py's.
The tests run this file as a script in subprocesses (``python test_fault_tolerance.py MODE FOLDER``):
``full`` trains uninterrupted, ``crash`` checkpoints every few steps (with a small callback, or with
ModelCheckpoint) and kills itself with SIGKILL in the middle of an epoch, ``resume`` continues from
the crashed run's last checkpoint (``ckpt_path="last"`` with ModelCheckpoint), and
``slow-save`` writes a valid checkpoint, then a huge one for the test to kill halfway.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

import ember


def _sibling(name: str) -> Any:
    """A test module beside this file, loaded by path: the model and the comparison are test_resume.py's."""
    spec = importlib.util.spec_from_file_location(f"ember_tests_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


resume_tests = _sibling("test_resume")
assert_bitwise_equal = resume_tests.assert_bitwise_equal
SEED, STEPS_PER_CHECKPOINT, KILL_AT_STEP = 7, 4, 14  # 8 batches an epoch: the last checkpoint is step 12, epoch 1


class Journal(ember.Callback):
    """Appends what training does to a file as it happens, so it survives the SIGKILL."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "a")  # noqa: SIM115 - open for the whole run, flushed per line

    def write(self, **event: Any) -> None:
        self.file.write(json.dumps(event) + "\n")
        self.file.flush()

    def on_train_epoch_start(self, trainer: ember.Trainer, pl_module: ember.Module) -> None:
        self.write(event="epoch start", epoch=trainer.current_epoch)

    def on_train_batch_end(self, trainer: ember.Trainer, pl_module: Any, outputs: Any, batch: Any, idx: int) -> None:
        self.write(event="batch", step=trainer.global_step, epoch=trainer.current_epoch, indices=batch[2].tolist())


class SaveEvery(ember.Callback):
    def __init__(self, path: Path, steps: int) -> None:
        self.path, self.steps = path, steps

    def on_train_batch_end(self, trainer: ember.Trainer, *args: Any) -> None:
        if trainer.global_step % self.steps == 0:
            trainer.save_checkpoint(self.path)


class KillAt(ember.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: ember.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class Huge(ember.Callback):
    """Adds 256 MiB to the checkpoint once ``armed``, so that writing it takes long enough to be killed."""

    armed = False

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        if self.armed:
            checkpoint["huge"] = torch.ones(64 * 2**20)


def savers(folder: Path, saver: str) -> tuple[list[Any], Any, Path]:
    """The checkpointing callbacks, the ckpt_path to resume with, and where the last checkpoint lands."""
    if saver == "ModelCheckpoint":
        from ember.callbacks import ModelCheckpoint

        every = ModelCheckpoint(
            dirpath=folder / "checkpoints", every_n_train_steps=STEPS_PER_CHECKPOINT, save_last=True
        )
        return [every], "last", folder / "checkpoints" / "last.ckpt"
    return [SaveEvery(folder / "last.ckpt", STEPS_PER_CHECKPOINT)], folder / "last.ckpt", folder / "last.ckpt"


def main(mode: str, folder: Path, saver: str = "") -> None:
    torch.set_num_threads(1)
    ember.seed_everything(SEED if mode != "resume" else 1234)
    model = resume_tests.DropoutModel()
    callbacks: list[Any] = [Journal(folder / "journal.jsonl")]
    checkpointing, ckpt_path, _ = savers(folder, saver)
    if mode == "crash":
        callbacks += [*checkpointing, KillAt(KILL_AT_STEP)]
    if mode == "resume" and saver == "ModelCheckpoint":
        callbacks += checkpointing
    huge = Huge()
    if mode == "slow-save":
        callbacks = [huge]
    flags = {"max_epochs": 3, "val_check_interval": 0.5, "deterministic": True, "logger": False}
    flags.update(enable_progress_bar=False, enable_model_summary=False)
    flags["enable_checkpointing"] = any(type(callback).__name__ == "ModelCheckpoint" for callback in callbacks)
    trainer = ember.Trainer(callbacks=callbacks, default_root_dir=folder, **flags)
    if mode == "slow-save":
        trainer.fit(model)
        trainer.save_checkpoint(folder / "target.ckpt")
        print("saved the small checkpoint", flush=True)
        huge.armed = True
        trainer.save_checkpoint(folder / "target.ckpt")
        print("saved the huge checkpoint", flush=True)
        return
    trainer.fit(model, ckpt_path=ckpt_path if mode == "resume" else None)
    final = {"model": model.state_dict(), "optimizer": trainer.optimizers[0].state_dict()}
    torch.save(final, folder / "final.pt")


# ---------------------------------------------------------------------- tests
def start(mode: str, folder: Path, saver: str = "") -> subprocess.Popen[str]:
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, mode, str(folder), saver]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def journal(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "journal.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("saver", ["callback", "ModelCheckpoint"])
def test_a_run_killed_mid_epoch_resumes_to_the_same_weights_as_an_uninterrupted_one(tmp_path: Path, saver) -> None:
    full, crash = start("full", tmp_path / "full"), start("crash", tmp_path / "run", saver)
    assert full.wait(timeout=300) == 0, full.communicate()[1]
    assert crash.wait(timeout=300) == -signal.SIGKILL, crash.communicate()[1]
    checkpoint = torch.load(savers(tmp_path / "run", saver)[2], weights_only=True)
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (1, 12)  # mid-epoch, validation still due
    crashed_journal = journal(tmp_path / "run")
    assert crashed_journal[-1] == {**crashed_journal[-1], "event": "batch", "step": KILL_AT_STEP}

    resumed = start("resume", tmp_path / "run", saver)
    assert resumed.wait(timeout=300) == 0, resumed.communicate()[1]
    final, expected = torch.load(tmp_path / "run" / "final.pt"), torch.load(tmp_path / "full" / "final.pt")
    assert_bitwise_equal(expected["model"], final["model"], "model")
    assert_bitwise_equal(expected["optimizer"], final["optimizer"], "optimizer")

    events = journal(tmp_path / "run")
    saved_at = next(i for i, e in enumerate(events) if e.get("step") == checkpoint["global_step"])
    after_crash = events[len(crashed_journal) :]
    assert events[: saved_at + 1] + after_crash == journal(tmp_path / "full")
    assert {"event": "epoch start", "epoch": 1} not in after_crash  # the resumed epoch did not start again
    assert after_crash[0]["step"] == checkpoint["global_step"] + 1


@pytest.mark.slow
def test_a_save_killed_halfway_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    child = start("slow-save", tmp_path)
    assert child.stdout is not None
    assert child.stdout.readline() == "saved the small checkpoint\n", child.communicate()[1]
    previous = (tmp_path / "target.ckpt").read_bytes()
    written = 0
    deadline = time.monotonic() + 120
    while written < 2**20 and child.poll() is None and time.monotonic() < deadline:
        temporaries = list(tmp_path.glob(".target.ckpt.tmp-*"))
        written = temporaries[0].stat().st_size if temporaries else 0
    child.kill()  # SIGKILL, in the middle of writing the 256 MiB tensor
    assert child.wait() == -signal.SIGKILL, "the huge checkpoint was written before it could be killed"

    assert (tmp_path / "target.ckpt").read_bytes() == previous
    survivor = torch.load(tmp_path / "target.ckpt", weights_only=True)
    assert "huge" not in survivor and survivor["global_step"] == 24
    (leftover,) = tmp_path.glob(".target.ckpt.tmp-*")
    assert 2**20 <= leftover.stat().st_size < 256 * 2**20

    from ember.testing import TinyModel, make_trainer

    trainer = make_trainer(tmp_path / "next", max_epochs=1)
    trainer.fit(TinyModel())
    trainer.save_checkpoint(tmp_path / "target.ckpt")  # the next save cleans up after the killed one
    assert list(tmp_path.glob(".target.ckpt.tmp-*")) == []


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), *sys.argv[3:])
