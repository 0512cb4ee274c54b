"""Signals, autoresume and ckpt_path="last" in one process: real signals sent to this process, real files.

The subprocess tests (SIGTERM and SIGKILL, then the same command again) are in test_preemption.py.
"""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path
from typing import Any

import pytest
import torch

import ember
from ember.callbacks import LambdaCallback, ModelCheckpoint
from ember.errors import EmberWarning, MisconfigurationError
from ember.loggers import CSVLogger
from ember.testing import TinyModel, make_trainer


class SignalAt(ember.Callback):
    """Sends this process a real signal once, as a scheduler would; training goes on until the step boundary."""

    def __init__(self, step: int, number: int = signal.SIGTERM) -> None:
        self.step, self.number = step, number

    def on_train_batch_start(self, trainer: ember.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.number)


class SignalAgainOnException(ember.Callback):
    """Signals that arrive during the shutdown: a scheduler's second SIGTERM, an impatient user's Ctrl-C."""

    def __init__(self, *numbers: int) -> None:
        self.numbers, self.exceptions = numbers, []

    def on_exception(self, trainer: ember.Trainer, pl_module: Any, exception: BaseException) -> None:
        self.exceptions.append(exception)
        for number in self.numbers:
            os.kill(os.getpid(), number)


def test_a_signal_ends_fit_at_the_next_step_with_a_resume_checkpoint_and_exit_code_128_plus_signum(
    tmp_path: Path,
) -> None:
    twice = SignalAgainOnException(signal.SIGTERM, signal.SIGINT)
    trainer = make_trainer(tmp_path, callbacks=[SignalAt(3), twice], logger=CSVLogger(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        trainer.fit(TinyModel())
    assert exit_info.value.code == 128 + signal.SIGTERM == 143
    (exception,) = twice.exceptions
    assert isinstance(exception, ember.errors.Preempted) and exception.signum == signal.SIGTERM
    assert trainer.state.status.value == "interrupted"
    checkpoint = torch.load(tmp_path / "ember_logs" / "version_0" / "checkpoints" / "resume.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 4 == trainer.global_step  # the step running at the signal finished, no more


def test_repeated_ctrl_c_ends_fit_once_with_exit_code_1(tmp_path: Path) -> None:
    again = SignalAgainOnException(signal.SIGINT, signal.SIGINT)
    trainer = make_trainer(tmp_path, callbacks=[SignalAt(2, signal.SIGINT), again])
    with pytest.raises(SystemExit) as exit_info:
        trainer.fit(TinyModel())
    assert exit_info.value.code == 1
    assert [type(exception) for exception in again.exceptions] == [KeyboardInterrupt]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_signal_handlers_are_the_previous_ones_again_after_fit(tmp_path: Path) -> None:
    seen: list[Any] = []
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR1)
    watcher = LambdaCallback(on_train_start=lambda trainer, module: seen.append(signal.getsignal(signal.SIGTERM)))
    make_trainer(tmp_path, callbacks=[watcher]).fit(TinyModel())
    assert seen and seen[0] not in (before[0], signal.SIG_DFL)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR1)) == before


def test_requeue_signals_none_leaves_the_handlers_alone(tmp_path: Path) -> None:
    seen: list[Any] = []
    watcher = LambdaCallback(on_train_start=lambda trainer, module: seen.append(signal.getsignal(signal.SIGTERM)))
    make_trainer(tmp_path, callbacks=[watcher], requeue_signals=None).fit(TinyModel())
    assert seen == [signal.getsignal(signal.SIGTERM)]


def test_slurm_requeue_calls_scontrol_requeue_with_the_job_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    scontrol = bin_folder / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "scontrol.txt"}\n')
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    trainer = make_trainer(tmp_path, callbacks=[SignalAt(2, signal.SIGUSR1)], slurm_requeue=True)
    with pytest.raises(SystemExit) as exit_info:
        trainer.fit(TinyModel())
    assert exit_info.value.code == 128 + signal.SIGUSR1
    assert (tmp_path / "scontrol.txt").read_text() == "requeue 4242\n"


def test_autoresume_with_nothing_to_resume_starts_fresh_and_a_finished_run_leaves_no_resume_checkpoint(
    tmp_path: Path,
) -> None:
    for expected_version in (0, 1):
        trainer = make_trainer(tmp_path, logger=CSVLogger(tmp_path), autoresume=True)
        trainer.fit(TinyModel())
        assert trainer.log_dir.endswith(f"version_{expected_version}")  # a finished run is not continued
        assert trainer.ckpt_path is None
        assert not (Path(trainer.log_dir) / "checkpoints" / "resume.ckpt").exists()


def test_ckpt_path_auto_resumes_the_interrupted_run_in_its_version_folder(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, callbacks=[SignalAt(3)], logger=CSVLogger(tmp_path))
    with pytest.raises(SystemExit):
        trainer.fit(TinyModel(), ckpt_path="auto")
    again = make_trainer(tmp_path, logger=CSVLogger(tmp_path))
    again.fit(TinyModel(), ckpt_path="auto")
    assert again.log_dir == trainer.log_dir
    assert again.ckpt_path is not None and again.ckpt_path.endswith("resume.ckpt")
    assert again.global_step == trainer.num_training_batches * 2


def test_ckpt_path_last_finds_the_previous_runs_last_checkpoint_in_the_default_folder(tmp_path: Path) -> None:
    first = make_trainer(tmp_path, logger=CSVLogger(tmp_path), callbacks=[ModelCheckpoint(save_last=True)])
    first.fit(TinyModel())
    second = make_trainer(
        tmp_path, logger=CSVLogger(tmp_path), callbacks=[ModelCheckpoint(save_last=True)], max_epochs=3
    )
    with pytest.warns(EmberWarning, match="dirpath changed"):  # the new run writes into its own version folder
        second.fit(TinyModel(), ckpt_path="last")
    assert second.ckpt_path == os.path.join(first.log_dir, "checkpoints", "last.ckpt")
    assert second.log_dir != first.log_dir


def test_ckpt_path_last_without_any_checkpoint_says_so(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, logger=CSVLogger(tmp_path), callbacks=[ModelCheckpoint(save_last=True)])
    with pytest.warns(EmberWarning, match="found no last checkpoint in this run or an earlier version folder"):
        trainer.fit(TinyModel(), ckpt_path="last")
    assert trainer.ckpt_path is None


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"requeue_signals": "SIGNOPE"}, "requeue_signals=...\\) got 'SIGNOPE', which is not a signal"),
        ({"requeue_signals": ["SIGKILL"]}, "cannot handle SIGKILL"),
        ({"autoresume": "yes"}, "autoresume='yes'\\); accepted are True, False, or a dict"),
        ({"autoresume": {"every_n_train_steps": 0}}, "every_n_train_steps=0; accepted: a positive int"),
    ],
)
def test_bad_signal_and_autoresume_flags_are_named(tmp_path: Path, flags: dict[str, Any], message: str) -> None:
    with pytest.raises(MisconfigurationError, match=message):
        make_trainer(tmp_path, **flags)
