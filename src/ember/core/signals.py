"""Preemption: a signal sets a flag, every rank agrees to stop at one step boundary, a resume checkpoint is written.

A scheduler's SIGTERM (SLURM, Kubernetes, spot instances) or SLURM's SIGUSR1 no
longer kills a fit halfway through a step: the handler only records the signal,
the training loop looks at that record once per step and, at the first step
boundary where any rank saw a signal, every rank saves the resume checkpoint
(:mod:`ember.core.autoresume`), runs on_exception with :class:`ember.errors.Preempted`,
finalizes the loggers as ``"preempted"`` and exits with ``128 + signal number``
(143 for SIGTERM). Further signals during that shutdown are only noted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ember.errors import MisconfigurationError, Preempted

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer

DEFAULT_SIGNALS = ("SIGTERM", "SIGUSR1")


def parse_signals(value: Any) -> tuple[signal.Signals, ...]:
    """``requeue_signals``: signal names, numbers or ``signal.Signals``; None or () turns the handling off."""
    if value is None:
        return ()
    items = [value] if isinstance(value, (str, int)) else list(value)
    parsed = []
    for item in items:
        try:
            if isinstance(item, str):
                name = item.upper()
                parsed.append(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
            else:
                parsed.append(signal.Signals(item))
        except (KeyError, ValueError, TypeError):
            raise MisconfigurationError(
                f"Trainer(requeue_signals=...) got {item!r}, which is not a signal; "
                "accepted are names such as 'SIGTERM' or 'SIGUSR1', signal numbers, or None for none"
            ) from None
        if parsed[-1] in (signal.SIGKILL, signal.SIGSTOP, signal.SIGINT):
            raise MisconfigurationError(
                f"Trainer(requeue_signals=...) cannot handle {parsed[-1].name}: SIGKILL and SIGSTOP cannot be caught "
                "and SIGINT (Ctrl-C) already ends the run through on_exception"
            )
    return tuple(dict.fromkeys(parsed))


class SignalWatch:
    """Signal handlers for one fit: they only record the first signal; ``restore`` puts the previous ones back."""

    def __init__(self, signals: tuple[signal.Signals, ...]) -> None:
        self.signals = signals
        self.received: int | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def install(self) -> None:
        """Handle the signals, in the main thread only (Python allows no other)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for number in self.signals:
            self._previous[number] = signal.signal(number, self._handle)

    def _handle(self, number: int, frame: Any) -> None:
        if self.received is None:
            self.received = number
            print(
                f"ember: received {signal.Signals(number).name}; stopping at the next step boundary "
                "with a resume checkpoint",
                file=sys.stderr,
                flush=True,
            )

    def restore(self) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()


class StepGuard:
    """What the training loop asks once per step: save the resume checkpoint now, and stop after it?"""

    def __init__(self, trainer: Trainer, watch: SignalWatch, every_n_train_steps: int | None, interval: Any) -> None:
        self.trainer, self.watch = trainer, watch
        self.every = every_n_train_steps
        self.interval = interval.total_seconds() if interval is not None else None
        self.last_save = time.monotonic()
        self.collective = trainer.strategy.world_size > 1

    def poll(self) -> None:
        """Called at a step boundary: saves and raises :class:`Preempted` when a rank saw a signal."""
        signalled = self.watch.received is not None
        due = self.interval is not None and time.monotonic() - self.last_save >= self.interval
        if self.collective:
            import torch

            votes = self.trainer.strategy.reduce(torch.tensor([float(signalled), float(due)]), "max")
            signalled, due = bool(votes[0] > 0), bool(votes[1] > 0)
        step = self.trainer.fit_progress.stepped_batches
        due = due or (self.every is not None and step > 0 and step % self.every == 0)
        if signalled or due:
            self.save()
        if signalled:
            number = self.watch.received or signal.SIGTERM  # another rank's signal: stop as if it were SIGTERM
            raise Preempted(number, self.trainer._resume_path)

    def save(self) -> None:
        from ember.core.autoresume import resume_path

        self.trainer.save_checkpoint(resume_path(self.trainer))
        self.last_save = time.monotonic()


@contextlib.contextmanager
def ignoring_ctrl_c() -> Iterator[None]:
    """Shutdown code (on_exception, finalize) runs to the end: Ctrl-C is ignored meanwhile (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def requeue_slurm_job() -> bool:
    """``scontrol requeue $SLURM_JOB_ID`` (``Trainer(slurm_requeue=True)``, global rank 0); True when it worked."""
    job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if job and "SLURM_ARRAY_TASK_ID" in os.environ else None
    job = job or os.environ.get("SLURM_JOB_ID")
    if not job:
        return False
    scontrol = shutil.which("scontrol")
    if scontrol is None:
        print("ember: slurm_requeue=True but scontrol is not on PATH; the job is not requeued", file=sys.stderr)
        return False
    done = subprocess.run([scontrol, "requeue", job], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"ember: scontrol requeue {job} failed: {done.stderr.strip()}", file=sys.stderr)
        return False
    print(f"ember: requeued SLURM job {job}", file=sys.stderr, flush=True)
    return True
