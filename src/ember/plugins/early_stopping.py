"""EarlyStopping: stop fit when a monitored metric stops improving, diverges or reaches a threshold.

It behaves as Lightning's EarlyStopping. The check runs at train-epoch end
(after the module's own ``on_train_epoch_end``, hence ``trylast``), or at
validation end when validation runs more than once an epoch or not every
epoch. Any process can stop all of them: the decision is reduced with
``any``.

Importing this module does not import torch.
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

from ember.callback import Callback
from ember.core.messages import info
from ember.errors import EmberWarning, MisconfigurationError
from ember.markers import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ember.core.module import Module
    from ember.core.trainer import Trainer


class EarlyStoppingReason(Enum):
    """Why EarlyStopping stopped the run (``EarlyStopping.stopping_reason``)."""

    NOT_STOPPED = 0
    STOPPING_THRESHOLD = 1
    DIVERGENCE_THRESHOLD = 2
    PATIENCE_EXHAUSTED = 3
    NON_FINITE_METRIC = 4


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved for ``patience`` checks.

    :param monitor: the logged metric to watch.
    :param min_delta: an improvement must exceed this much (an equal value is no improvement).
    :param patience: checks without improvement before stopping; checks, not epochs.
    :param verbose: log (INFO, ``ember`` logger) why the metric improved or the run stopped.
    :param mode: ``"min"`` or ``"max"``: which direction is better.
    :param strict: raise if ``monitor`` was not logged (False: skip the check).
    :param check_finite: stop when the metric becomes NaN or infinite.
    :param stopping_threshold: stop as soon as the metric is better than this.
    :param divergence_threshold: stop as soon as the metric is worse than this.
    :param check_on_train_epoch_end: check at train-epoch end (True) or validation end (False);
        None decides from ``val_check_interval`` and ``check_val_every_n_epoch``.
    :param log_rank_zero_only: print messages from global rank 0 only.

    After fit, ``stopped_epoch`` is the epoch it stopped in (0 if it did not),
    ``stopping_reason`` an :class:`EarlyStoppingReason` and
    ``stopping_reason_message`` the explanation.
    """

    mode_dict: dict[str, Callable[[Any, Any], Any]] = {"min": operator.lt, "max": operator.gt}
    order_dict = {"min": "<", "max": ">"}

    def __init__(
        self,
        monitor: str,
        min_delta: float = 0.0,
        patience: int = 3,
        verbose: bool = False,
        mode: str = "min",
        strict: bool = True,
        check_finite: bool = True,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_on_train_epoch_end: bool | None = None,
        log_rank_zero_only: bool = False,
    ) -> None:
        import torch

        if mode not in self.mode_dict:
            raise MisconfigurationError(f"EarlyStopping(mode={mode!r}): accepted are 'min' and 'max'")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise MisconfigurationError(f"EarlyStopping(patience={patience!r}): accepted is an int >= 0")
        self.monitor = monitor
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.strict = strict
        self.check_finite = check_finite
        self.stopping_threshold = stopping_threshold
        self.divergence_threshold = divergence_threshold
        self.log_rank_zero_only = log_rank_zero_only
        self._check_on_train_epoch_end = check_on_train_epoch_end
        # stored signed, as Lightning does: subtracting it always favours the incumbent
        self.min_delta = min_delta if mode == "max" else -min_delta
        self.wait_count = 0
        self.stopped_epoch = 0
        self.stopping_reason = EarlyStoppingReason.NOT_STOPPED
        self.stopping_reason_message: str | None = None
        self.best_score: torch.Tensor = torch.tensor(math.inf if mode == "min" else -math.inf)

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode)

    @property
    def monitor_op(self) -> Callable[[Any, Any], Any]:
        return self.mode_dict[self.mode]

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: Trainer, pl_module: Module, stage: str) -> None:
        if self._check_on_train_epoch_end is None:
            # validation several times an epoch, or not every epoch: check after validation instead
            self._check_on_train_epoch_end = trainer.val_check_interval == 1.0 and trainer.check_val_every_n_epoch == 1

    @hookimpl(trylast=True)
    def on_train_epoch_end(self, trainer: Trainer, pl_module: Module) -> None:
        if self._check_on_train_epoch_end and not self._should_skip_check(trainer):
            self._run_early_stopping_check(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: Module) -> None:
        if not self._check_on_train_epoch_end and not self._should_skip_check(trainer):
            self._run_early_stopping_check(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait_count": self.wait_count,
            "stopped_epoch": self.stopped_epoch,
            "best_score": self.best_score,
            "patience": self.patience,
            "stopping_reason": self.stopping_reason.value,
            "stopping_reason_message": self.stopping_reason_message,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.wait_count = state_dict["wait_count"]
        self.stopped_epoch = state_dict["stopped_epoch"]
        self.best_score = state_dict["best_score"]
        self.patience = state_dict["patience"]
        self.stopping_reason = EarlyStoppingReason(
            state_dict.get("stopping_reason", EarlyStoppingReason.NOT_STOPPED.value)
        )
        self.stopping_reason_message = state_dict.get("stopping_reason_message")

    # --------------------------------------------------------------- helpers
    @staticmethod
    def _should_skip_check(trainer: Trainer) -> bool:
        return trainer.state.fn != "fit" or trainer.sanity_checking

    def _validate_condition_metric(self, trainer: Trainer, logs: dict[str, Any]) -> bool:
        if self.monitor in logs:
            return True
        message = (
            f"EarlyStopping is conditioned on metric {self.monitor!r}, which was not logged; "
            f"set EarlyStopping(monitor=...) to one of the logged metrics: {sorted(logs)}"
        )
        if self.strict:
            raise RuntimeError(message + " (or strict=False to skip the check when it is missing)")
        if self.verbose and trainer.is_global_zero:
            warnings.warn(message, EmberWarning, stacklevel=2)
        return False

    def _run_early_stopping_check(self, trainer: Trainer) -> None:
        logs = trainer.callback_metrics
        if trainer.fast_dev_run or not self._validate_condition_metric(trainer, logs):
            return
        current = logs[self.monitor].squeeze()
        should_stop, reason = self._evaluate_stopping_criteria(current)
        should_stop = trainer.strategy.reduce_boolean_decision(should_stop, all=False)
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop:
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason_message = reason
        if reason and self.verbose:
            self._log_info(trainer, reason, self.log_rank_zero_only)

    def _evaluate_stopping_criteria(self, current: torch.Tensor) -> tuple[bool, str | None]:
        import torch

        op, order = self.monitor_op, self.order_dict[self.mode]
        if self.check_finite and not torch.isfinite(current):
            self.stopping_reason = EarlyStoppingReason.NON_FINITE_METRIC
            return True, (
                f"Monitored metric {self.monitor} = {current} is not finite. "
                f"Previous best value was {self.best_score:.3f}. Signaling Trainer to stop."
            )
        if self.stopping_threshold is not None and op(current, self.stopping_threshold):
            self.stopping_reason = EarlyStoppingReason.STOPPING_THRESHOLD
            return True, (
                f"Stopping threshold reached: {self.monitor} = {current} {order} {self.stopping_threshold}. "
                "Signaling Trainer to stop."
            )
        if self.divergence_threshold is not None and op(-current, -self.divergence_threshold):
            self.stopping_reason = EarlyStoppingReason.DIVERGENCE_THRESHOLD
            return True, (
                f"Divergence threshold reached: {self.monitor} = {current} {order} {self.divergence_threshold}. "
                "Signaling Trainer to stop."
            )
        if op(current - self.min_delta, self.best_score.to(current.device)):
            reason = self._improvement_message(current)
            self.best_score = current.detach().clone()
            self.wait_count = 0
            return False, reason
        self.wait_count += 1
        if self.wait_count >= self.patience:
            self.stopping_reason = EarlyStoppingReason.PATIENCE_EXHAUSTED
            return True, (
                f"Monitored metric {self.monitor} did not improve in the last {self.wait_count} records. "
                f"Best score: {self.best_score:.3f}. Signaling Trainer to stop."
            )
        return False, None

    def _improvement_message(self, current: torch.Tensor) -> str:
        import torch

        if torch.isfinite(self.best_score):
            return (
                f"Metric {self.monitor} improved by {abs(self.best_score - current):.3f} >= "
                f"min_delta = {abs(self.min_delta)}. New best score: {current:.3f}"
            )
        return f"Metric {self.monitor} improved. New best score: {current:.3f}"

    @staticmethod
    def _log_info(trainer: Trainer, message: str, log_rank_zero_only: bool) -> None:
        rank = trainer.global_rank if trainer.world_size > 1 else None
        if rank is not None:
            message = f"[rank: {rank}] {message}"
        if rank is None or not log_rank_zero_only or rank == 0:
            info(message, name=__name__, rank_zero_only=False)
