"""Preemption: a signal sets a flag, every rank agrees to stop at one step boundary, a resume checkpoint is written.

A scheduler's SIGTERM (SLURM, Kubernetes, spot instances) or SLURM's SIGUSR1 no
longer kills a fit halfway through a step: the handler only records the signal,
the training loop looks at that record at step boundaries (on several ranks, the
ranks compare records about every 0.2 s) and, at the first step boundary where
any rank is known to have seen a signal, every rank saves the resume checkpoint
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

    def pass_on(self) -> None:
        """A signal that came too late to stop the fit (it had finished) goes to the handler that was there before.

        Without ember that handler would have had it (by default, SIGTERM ends
        the process), so a scheduler's request is not swallowed by a fit that
        happened to finish first.
        """
        if self.received is not None:
            number, self.received = self.received, None
            os.kill(os.getpid(), number)


class StepGuard:
    """What the training loop asks once per step: save the resume checkpoint now, and stop after it?

    On several ranks the answer must be the same on every rank, which takes a
    collective. Rather than one all-reduce per step (a tenth of a millisecond
    on gloo, more than the rest of a small step's framework cost), the ranks
    vote every ``_every`` steps, a number they all derive from the previous
    vote's result, so they keep agreeing on which steps vote: it aims at one
    vote per :data:`VOTE_SECONDS` of training, so a signal is acted on within
    about that long plus one step.
    """

    #: How often the ranks aim to vote on "stop now?" (seconds of training between votes).
    VOTE_SECONDS = 0.2

    def __init__(self, trainer: Trainer, watch: SignalWatch, every_n_train_steps: int | None, interval: Any) -> None:
        self.trainer, self.watch = trainer, watch
        self.every = every_n_train_steps
        self.interval = interval.total_seconds() if interval is not None else None
        self.last_save = time.monotonic()
        self.collective = trainer.strategy.world_size > 1
        self._every, self._countdown, self._last_vote = 1, 1, time.monotonic()
        #: One process saving on signals only: a step without a signal has nothing to do.
        self._signals_only = not self.collective and self.every is None and self.interval is None

    def poll(self) -> None:
        """Called at a step boundary: saves and raises :class:`Preempted` when a rank saw a signal."""
        signalled = self.watch.received is not None
        if self._signals_only and not signalled:
            return
        due = self.interval is not None and time.monotonic() - self.last_save >= self.interval
        if self.collective:
            self._countdown -= 1
            if self._countdown > 0:
                signalled = due = False
            else:
                signalled, due = self._vote(signalled, due)
        step = self.trainer.fit_progress.stepped_batches
        due = due or (self.every is not None and step > 0 and step % self.every == 0)
        if signalled or due:
            self.save()
        if signalled:
            number = self.watch.received or signal.SIGTERM  # another rank's signal: stop as if it were SIGTERM
            raise Preempted(number, self.trainer._resume_path)

    def _vote(self, signalled: bool, due: bool) -> tuple[bool, bool]:
        """Every rank's view, and the number of steps until the next vote, the same on all ranks."""
        import torch

        now = time.monotonic()
        votes = self.trainer.strategy.reduce(
            torch.tensor([float(signalled), float(due), now - self._last_vote]), "max"
        ).tolist()
        self._last_vote = now
        per_step = max(votes[2], 1e-6) / self._every  # the slowest rank's time per step since the last vote
        self._every = self._countdown = max(1, min(10_000, round(self.VOTE_SECONDS / per_step)))
        return votes[0] > 0, votes[1] > 0

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
