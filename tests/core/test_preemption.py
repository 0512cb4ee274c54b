"""Preemption and autoresume as a scheduler meets them: real processes, real SIGTERM and SIGKILL, then the same command again.

The tests run this file as a script (``python test_preemption.py MODE FOLDER``): ``full`` trains
uninterrupted with autoresume, ``term`` sends itself SIGTERM in the middle of an epoch (a real signal:
the handler only notes it), ``kill`` saves the resume checkpoint every few steps and dies by SIGKILL,
and ``again`` is the plain command a scheduler restarts. The model is test_resume.py's, logging epoch
means too (test_resume_logging.py's); it logs to metrics.csv and TensorBoard, and the resumed run's
files must read as the uninterrupted run's.
"""

from __future__ import annotations

import csv
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

sys.path.insert(0, str(Path(__file__).parent))
from test_autoresume import SignalAt  # noqa: E402
from test_fault_tolerance import Journal, KillAt, assert_bitwise_equal, journal  # noqa: E402
from test_resume_logging import EpochLogging, assert_same_scalars  # noqa: E402

SEED, SIGNAL_AT_STEP, DDP_SIGNAL_AT_STEP = 7, 14, 5  # 8 batches an epoch (4 on each of 2 ranks): mid epoch 1


class Seen(ember.Callback):
    """Notes the exception on_exception gets, in a file: the process exits right after."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_exception(self, trainer: ember.Trainer, pl_module: Any, exception: BaseException) -> None:
        self.path.write_text(f"{type(exception).__name__} {getattr(exception, 'signum', '')}")


def main(mode: str, folder: Path) -> None:
    from ember.callbacks import LambdaCallback
    from ember.loggers import CSVLogger, TensorBoardLogger

    torch.set_num_threads(1)
    ember.seed_everything(SEED)
    callbacks: list[Any] = [Journal(folder / "journal.jsonl"), Seen(folder / "exception.txt")]
    autoresume: Any = True
    distributed = mode.startswith("ddp-")  # 2 ranks launched by ember (gloo)
    if distributed:
        mode = mode[len("ddp-") :]
        # steps of a tenth of a second: the ranks compare notes every 0.2 s, so the stop is a step or two later
        callbacks.append(LambdaCallback(on_train_batch_end=lambda *args: time.sleep(0.1)))
    if mode == "term-all" or (mode == "term" and int(os.environ.get("LOCAL_RANK", "0")) == 0):
        # term: the signal reaches rank 0 only; term-all: every rank, as scancel and Kubernetes send it
        callbacks.append(SignalAt(DDP_SIGNAL_AT_STEP if distributed else SIGNAL_AT_STEP))
    if mode == "term-late":  # after the last step: too late to stop the fit
        callbacks.append(LambdaCallback(on_train_end=lambda *args: os.kill(os.getpid(), signal.SIGTERM)))
    if mode == "slow":  # a few steps a second, for a signal sent from outside at no particular step
        callbacks.append(LambdaCallback(on_train_batch_end=lambda *args: time.sleep(0.1)))
    if mode == "kill":
        # the loggers' files reach disk after every batch, as a long run's do between checkpoints: the killed
        # attempt leaves rows from after its last checkpoint, which the resumed run must replace, not repeat
        callbacks.append(LambdaCallback(on_train_batch_end=lambda trainer, *args: save_loggers(trainer)))
        callbacks.append(KillAt(SIGNAL_AT_STEP))
        autoresume = {"every_n_train_steps": 4}
    trainer = ember.Trainer(
        max_epochs=3,
        val_check_interval=0.5,
        deterministic=True,
        log_every_n_steps=1,
        logger=[CSVLogger(folder), TensorBoardLogger(folder, name="tb")],
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        autoresume=autoresume,
        **({"strategy": "ddp", "devices": 2, "accelerator": "cpu"} if distributed else {}),
    )
    model = EpochLogging()
    trainer.fit(model)
    if not trainer.is_global_zero:
        return
    final = {"model": model.state_dict(), "optimizer": trainer.optimizers[0].state_dict()}
    torch.save(final, folder / "final.pt")
    (folder / "log_dir.txt").write_text(trainer.log_dir)


def save_loggers(trainer: ember.Trainer) -> None:
    for logger in trainer.loggers:
        logger.save()


# ---------------------------------------------------------------------- tests
def run(mode: str, folder: Path) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, mode, str(folder)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def metrics(folder: Path) -> list[dict[str, str]]:
    with open(folder / "ember_logs" / "version_0" / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def assert_same_run(folder: Path, reference: Path) -> None:
    final, expected = torch.load(folder / "final.pt"), torch.load(reference / "final.pt")
    assert_bitwise_equal(expected["model"], final["model"], "model")
    assert_bitwise_equal(expected["optimizer"], final["optimizer"], "optimizer")
    assert (folder / "log_dir.txt").read_text().endswith("version_0")  # the same version folder
    assert not (folder / "ember_logs" / "version_1").exists()
    assert metrics(folder) == metrics(reference)  # every row once, none missing, epoch means over whole epochs
    assert_same_scalars(folder, reference)  # TensorBoard shows each scalar once, with the uninterrupted values
    assert not (folder / "ember_logs" / "version_0" / "checkpoints" / "resume.ckpt").exists()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("full")
    done = run("full", folder)
    assert done.returncode == 0, done.stderr
    return folder


@pytest.mark.slow
def test_sigterm_stops_at_a_step_boundary_with_a_resume_checkpoint_and_exit_code_143(
    tmp_path: Path, uninterrupted: Path
) -> None:
    stopped = run("term", tmp_path)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert (tmp_path / "exception.txt").read_text() == f"Preempted {int(signal.SIGTERM)}"
    resume = torch.load(tmp_path / "ember_logs" / "version_0" / "checkpoints" / "resume.ckpt", weights_only=True)
    assert resume["global_step"] == SIGNAL_AT_STEP + 1  # the step that was running when the signal came finished
    events = journal(tmp_path)
    assert events[-1]["step"] == SIGNAL_AT_STEP + 1
    logged = metrics(tmp_path)
    assert logged == metrics(uninterrupted)[: len(logged)]  # flushed at the signal, up to the last step
    assert max(int(row["step"]) for row in logged) == SIGNAL_AT_STEP

    again = run("term-done", tmp_path)  # the same script, restarted (without the signal this time)
    assert again.returncode == 0, again.stderr
    assert_same_run(tmp_path, uninterrupted)


@pytest.mark.slow
def test_sigterm_from_outside_at_any_step_then_the_same_command_again_ends_as_an_uninterrupted_run(
    tmp_path: Path, uninterrupted: Path
) -> None:
    command = [sys.executable, __file__, "slow", str(tmp_path)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if (tmp_path / "journal.jsonl").exists() and len(journal(tmp_path)) > 12:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)  # as Kubernetes or scancel would
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 128 + signal.SIGTERM, stderr
    resume = torch.load(tmp_path / "ember_logs" / "version_0" / "checkpoints" / "resume.ckpt", weights_only=True)
    assert resume["global_step"] == journal(tmp_path)[-1]["step"]  # saved after the last step that ran
    again = run("again", tmp_path)
    assert again.returncode == 0, again.stderr
    assert_same_run(tmp_path, uninterrupted)


@pytest.mark.slow
def test_a_signal_too_late_to_stop_the_fit_is_passed_on_when_fit_returns(tmp_path: Path, uninterrupted: Path) -> None:
    late = run("term-late", tmp_path)
    assert late.returncode == -signal.SIGTERM, late.stderr  # the default handler had it, as without ember
    assert metrics(tmp_path) == metrics(uninterrupted)  # the fit itself finished and wrote everything
    assert not (tmp_path / "ember_logs" / "version_0" / "checkpoints" / "resume.ckpt").exists()
    assert not (tmp_path / "final.pt").exists()  # the script did not go on after fit


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["term", "term-all"], ids=["rank-0-only", "both-ranks"])
def test_sigterm_to_a_two_rank_ddp_run_stops_both_ranks_at_the_same_step(tmp_path: Path, mode: str) -> None:
    full = run("ddp-full", tmp_path / "full")
    assert full.returncode == 0, full.stderr
    stopped = run(f"ddp-{mode}", tmp_path / "run")
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr
    assert "Traceback" not in stopped.stderr
    resume = torch.load(
        tmp_path / "run" / "ember_logs" / "version_0" / "checkpoints" / "resume.ckpt", weights_only=True
    )
    # the ranks agree within about 0.2 s (two 0.1 s steps) of the signal; the rerun proves they agreed on one step
    assert DDP_SIGNAL_AT_STEP + 1 <= resume["global_step"] <= DDP_SIGNAL_AT_STEP + 4
    again = run("ddp-again", tmp_path / "run")
    assert again.returncode == 0, again.stderr
    assert_same_run(tmp_path / "run", tmp_path / "full")


@pytest.mark.slow
def test_a_run_killed_with_sigkill_continues_from_its_resume_checkpoint_when_started_again(
    tmp_path: Path, uninterrupted: Path
) -> None:
    killed = run("kill", tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resume = torch.load(tmp_path / "ember_logs" / "version_0" / "checkpoints" / "resume.ckpt", weights_only=True)
    assert resume["global_step"] == 12  # every 4 steps
    assert max(int(row["step"]) for row in metrics(tmp_path)) >= 12  # rows from after the checkpoint on disk
    again = run("again", tmp_path)
    assert again.returncode == 0, again.stderr
    assert_same_run(tmp_path, uninterrupted)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
