"""Timer: stop training when a wall-clock budget is spent, and tell how long each stage took.

A job with a time allowance should end on its own terms, with its epoch-end
and checkpoint hooks run, rather than be killed. The budget counts training
time across resumes: the elapsed time travels in checkpoints. ``Trainer(max_time=...)``
adds one of these with ``interval="step"``.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ember.callback import Callback
from ember.core.flags import duration as parse_duration
from ember.core.messages import info
from ember.core.state import RunningStage
from ember.errors import MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.module import Module
    from ember.core.trainer import Trainer

INTERVALS = ("step", "epoch")


class Timer(Callback):
    """Track the time spent in training, validation and test; stop training after ``duration``.

    :param duration: the training budget: ``"DD:HH:MM:SS"``, a :class:`~datetime.timedelta`,
        or a dict of timedelta arguments such as ``{"minutes": 30}``; None only measures.
    :param interval: check the budget after every training batch (``"step"``) or at
        the end of every training epoch (``"epoch"``).
    :param verbose: log a line when the budget is spent.

    Times are in seconds, from :func:`time.monotonic`. The decision to stop is
    global rank 0's, broadcast to every process, so all ranks stop after the
    same batch.
    """

    def __init__(
        self,
        duration: str | timedelta | dict[str, int] | None = None,
        interval: str = "step",
        verbose: bool = True,
    ) -> None:
        try:
            budget = parse_duration(duration)
        except MisconfigurationError:
            raise MisconfigurationError(
                f"Timer(duration={duration!r}): accepted are None, a string 'DD:HH:MM:SS', a datetime.timedelta, "
                "or a dict of timedelta arguments such as {'hours': 1}"
            ) from None
        if interval not in INTERVALS:
            raise MisconfigurationError(f"Timer(interval={interval!r}): accepted are 'step' and 'epoch'")
        self._duration: float | None = budget.total_seconds() if budget is not None else None
        self._interval = interval
        self._verbose = verbose
        self._start_time: dict[RunningStage, float | None] = dict.fromkeys(RunningStage)
        self._end_time: dict[RunningStage, float | None] = dict.fromkeys(RunningStage)
        self._offset = 0.0

    # ------------------------------------------------------------- queries
    def start_time(self, stage: str = RunningStage.TRAINING) -> float | None:
        """When ``stage`` ("train", "validate", "test", ...) last started, or None if it has not."""
        return self._start_time[_stage(stage)]

    def end_time(self, stage: str = RunningStage.TRAINING) -> float | None:
        """When ``stage`` last ended, or None if it has not."""
        return self._end_time[_stage(stage)]

    def time_elapsed(self, stage: str = RunningStage.TRAINING) -> float:
        """Seconds spent in ``stage``; for training, including the time restored from a checkpoint."""
        stage = _stage(stage)
        offset = self._offset if stage == RunningStage.TRAINING else 0.0
        start, end = self._start_time[stage], self._end_time[stage]
        if start is None:
            return offset
        return (time.monotonic() if end is None else end) - start + offset

    def time_remaining(self, stage: str = RunningStage.TRAINING) -> float | None:
        """Seconds left of ``duration`` (negative once exceeded), or None without a duration."""
        if self._duration is None:
            return None
        return self._duration - self.time_elapsed(stage)

    # --------------------------------------------------------------- hooks
    def on_train_start(self, trainer: Trainer, pl_module: Module) -> None:
        self._start_time[RunningStage.TRAINING] = time.monotonic()

    def on_train_end(self, trainer: Trainer, pl_module: Module) -> None:
        self._end_time[RunningStage.TRAINING] = time.monotonic()

    def on_validation_start(self, trainer: Trainer, pl_module: Module) -> None:
        self._start_time[RunningStage.VALIDATING] = time.monotonic()

    def on_validation_end(self, trainer: Trainer, pl_module: Module) -> None:
        self._end_time[RunningStage.VALIDATING] = time.monotonic()

    def on_test_start(self, trainer: Trainer, pl_module: Module) -> None:
        self._start_time[RunningStage.TESTING] = time.monotonic()

    def on_test_end(self, trainer: Trainer, pl_module: Module) -> None:
        self._end_time[RunningStage.TESTING] = time.monotonic()

    def on_fit_start(self, trainer: Trainer, pl_module: Module) -> None:
        # Callback state is restored by now: a resumed run whose budget is spent stops at once.
        if self._duration is not None:
            self._check_time_remaining(trainer)

    def on_train_batch_end(self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._interval == "step" and self._duration is not None:
            self._check_time_remaining(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: Module) -> None:
        if self._interval == "epoch" and self._duration is not None:
            self._check_time_remaining(trainer)

    # --------------------------------------------------------------- state
    @property
    def state_key(self) -> str:
        return self._generate_state_key(interval=self._interval)  # not the duration: a resume may extend it

    def state_dict(self) -> dict[str, Any]:
        return {"time_elapsed": {stage.value: self.time_elapsed(stage) for stage in RunningStage}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._offset = float(state_dict.get("time_elapsed", {}).get(RunningStage.TRAINING.value, 0.0))

    def _check_time_remaining(self, trainer: Trainer) -> None:
        assert self._duration is not None
        should_stop = bool(trainer.strategy.broadcast(self.time_elapsed() >= self._duration))
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop and self._verbose:
            elapsed = timedelta(seconds=int(self.time_elapsed()))
            info(f"Time limit reached. Elapsed time is {elapsed}. Signaling Trainer to stop.", name=__name__)


def _stage(stage: str) -> RunningStage:
    try:
        return RunningStage(stage)
    except ValueError:
        accepted = ", ".join(repr(s.value) for s in RunningStage)
        raise MisconfigurationError(f"Timer stage {stage!r}: accepted are {accepted}") from None
