"""LearningRateFinder: the learning-rate range test, run when fit starts, to pick an initial learning rate.

Guessing the learning rate costs whole runs; the range test costs a hundred
steps. Before training (and before any other callback's ``on_fit_start``) it
trains with a learning rate growing from ``min_lr`` to ``max_lr``, records
the smoothed loss at each, and suggests the LR where the loss falls fastest.
The model, optimizer, schedulers, random state and counters are then put back
(from a snapshot in host memory, so no file is written); only the suggested
LR is kept, in the model's ``lr``/``learning_rate`` attribute and the
optimizer's param groups, when ``update_attr`` is on.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from ember.callback import Callback
from ember.core.messages import info
from ember.errors import EmberWarning, MisconfigurationError
from ember.markers import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ember.core.module import Module
    from ember.core.trainer import Trainer


_PLOT_EXTRA = 'pip install "ember[plot]"'


class LRFinderResult:
    """What one range test measured: ``results["lr"]`` and ``results["loss"]`` (smoothed), step by step.

    :param mode: how the LR grew, ``"exponential"`` or ``"linear"``.
    :param lr_min: the first LR.
    :param lr_max: the LR the test would have reached at its last step.
    :param num_training: the steps the test was given.
    """

    def __init__(self, mode: str, lr_min: float, lr_max: float, num_training: int) -> None:
        self.mode, self.lr_min, self.lr_max, self.num_training = mode, lr_min, lr_max, num_training
        self.results: dict[str, list[float]] = {"lr": [], "loss": []}
        self._optimal_idx: int | None = None

    def suggestion(self, skip_begin: int = 10, skip_end: int = 1) -> float | None:
        """The LR where the smoothed loss falls fastest, or None with too few points.

        Fastest is the most negative slope of the loss over log(lr) in
        exponential mode (over lr in linear mode): the axis the LRs were
        spaced evenly on, which is the plot's axis, so the suggestion lands on
        the steepest part of the curve one sees.

        :param skip_begin: leading points to ignore (the smoothed loss is still settling there).
        :param skip_end: trailing points to ignore (the loss is usually diverging there).
        """
        import torch

        count = len(self.results["loss"])
        indices = torch.arange(count)[skip_begin : max(count - skip_end, 0)]
        losses = torch.tensor(self.results["loss"], dtype=torch.float64)[indices]
        lrs = torch.tensor(self.results["lr"], dtype=torch.float64)[indices]
        finite = torch.isfinite(losses)
        losses, lrs, indices = losses[finite], lrs[finite], indices[finite]
        if len(losses) < 2:
            warnings.warn(
                f"the learning-rate finder has {len(losses)} usable loss point(s) of {count} recorded, too few to "
                "suggest a learning rate; give it more num_training_steps or more training batches",
                EmberWarning,
                stacklevel=2,
            )
            self._optimal_idx = None
            return None
        # the slope over the axis the LRs were spaced evenly on: log(lr) in exponential mode, lr in linear mode
        coordinates = torch.log(lrs) if self.mode == "exponential" else lrs
        gradients = torch.gradient(losses, spacing=[coordinates])[0]
        self._optimal_idx = int(indices[int(torch.argmin(gradients))])
        return self.results["lr"][self._optimal_idx]

    def plot(self, suggest: bool = False, show: bool = False, ax: Any = None) -> Any:
        """Plot loss over LR (log scale in exponential mode); return the matplotlib figure.

        :param suggest: mark the suggested LR with a red dot.
        :param show: call ``matplotlib.pyplot.show()``.
        :param ax: the Axes to draw on; a new figure by default.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError(f"LRFinderResult.plot() needs matplotlib, an optional extra: {_PLOT_EXTRA}") from None
        lrs, losses = self.results["lr"], self.results["loss"]
        if ax is None:
            figure, ax = plt.subplots()
        else:
            figure = ax.figure
        ax.plot(lrs, losses)
        if self.mode == "exponential":
            ax.set_xscale("log")
        ax.set_xlabel("Learning rate")
        ax.set_ylabel("Loss")
        if suggest and self.suggestion() is not None and self._optimal_idx is not None:
            index = self._optimal_idx
            ax.plot(lrs[index], losses[index], markersize=10, marker="o", color="red")
        if show:
            plt.show()
        return figure


class LearningRateFinder(Callback):
    """Run the learning-rate range test at ``on_fit_start``; the result is ``optimal_lr`` (an :class:`LRFinderResult`).

    :param min_lr: the LR of the first step.
    :param max_lr: the LR of the last step.
    :param num_training_steps: how many LRs (optimizer steps) to test.
    :param mode: ``"exponential"`` (default) or ``"linear"`` growth.
    :param early_stop_threshold: stop once the smoothed loss exceeds this
        multiple of the best one so far; None never stops early.
    :param update_attr: write the suggestion to the model's LR attribute and
        to the optimizer's param groups.
    :param attr_name: that attribute; ``lr`` or ``learning_rate`` (on the
        model, its hparams, the datamodule or its hparams) are found by default.
    """

    SUPPORTED_MODES = ("linear", "exponential")

    def __init__(
        self,
        min_lr: float = 1e-8,
        max_lr: float = 1,
        num_training_steps: int = 100,
        mode: str = "exponential",
        early_stop_threshold: float | None = 4.0,
        update_attr: bool = True,
        attr_name: str = "",
    ) -> None:
        mode = mode.lower() if isinstance(mode, str) else mode
        if mode not in self.SUPPORTED_MODES:
            raise MisconfigurationError(f"LearningRateFinder(mode={mode!r}): accepted are {self.SUPPORTED_MODES}")
        if not (0 <= min_lr < max_lr) or (mode == "exponential" and min_lr == 0):
            raise MisconfigurationError(
                f"LearningRateFinder(min_lr={min_lr!r}, max_lr={max_lr!r}): accepted is 0 < min_lr < max_lr "
                "(min_lr may be 0 in linear mode)"
            )
        if not isinstance(num_training_steps, int) or num_training_steps < 1:
            raise MisconfigurationError(
                f"LearningRateFinder(num_training_steps={num_training_steps!r}): accepted is an int >= 1"
            )
        self._min_lr = min_lr
        self._max_lr = max_lr
        self._num_training_steps = num_training_steps
        self._mode = mode
        self._early_stop_threshold = early_stop_threshold
        self._update_attr = update_attr
        self._attr_name = attr_name
        self.optimal_lr: LRFinderResult | None = None

    @hookimpl(tryfirst=True)
    def on_fit_start(self, trainer: Trainer, pl_module: Module) -> None:
        self.lr_find(trainer, pl_module)

    def lr_find(self, trainer: Trainer, pl_module: Module) -> None:
        """Run the range test now; store the result in ``optimal_lr`` and apply the suggestion if ``update_attr``."""
        from ember.core.optimizers import LRSchedulerConfig
        from ember.core.tuning import RunSnapshot, run_training_steps, set_tuned_attribute

        if trainer.fast_dev_run:
            warnings.warn("LearningRateFinder is skipped with fast_dev_run", EmberWarning, stacklevel=2)
            self.optimal_lr = None
            return
        if len(trainer.optimizers) != 1:
            raise MisconfigurationError(
                f"LearningRateFinder works with one optimizer; configure_optimizers() returned {len(trainer.optimizers)}"
            )
        attr_name = _lr_attribute(trainer, self._attr_name) if self._update_attr else ""
        result = LRFinderResult(self._mode, self._min_lr, self._max_lr, self._num_training_steps)
        recorder = _LossRecorder(self._early_stop_threshold)
        snapshot = RunSnapshot(trainer)
        try:
            scheduler = _range_scheduler(
                trainer.optimizers[0], self._mode, self._min_lr, self._max_lr, self._num_training_steps
            )
            run_training_steps(
                trainer,
                self._num_training_steps,
                [recorder],
                limit_val_batches=0,
                lr_scheduler_configs=[LRSchedulerConfig(scheduler, interval="step")],
            )
        finally:
            snapshot.restore()
        if len(recorder.losses) < self._num_training_steps:
            info("LearningRateFinder stopped after %d steps: the loss diverged", len(recorder.losses), name=__name__)
        result.results = trainer.strategy.broadcast({"lr": recorder.lrs, "loss": recorder.losses})
        self.optimal_lr = result
        if attr_name:
            lr = result.suggestion()
            if lr is not None:
                set_tuned_attribute(trainer, attr_name, lr)
                for optimizer in trainer.optimizers:
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                info("LearningRateFinder set the learning rate to %s", lr, name=__name__)


class _LossRecorder(Callback):
    """The one callback of the trial: the LR before each optimizer step, the smoothed loss after it."""

    def __init__(self, early_stop_threshold: float | None, beta: float = 0.98) -> None:
        self.early_stop_threshold, self.beta = early_stop_threshold, beta
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self._average = 0.0
        self._best = math.inf

    def on_train_batch_start(self, trainer: Trainer, pl_module: Module, batch: Any, batch_idx: int) -> None:
        if (batch_idx + 1) % (trainer.accumulate_grad_batches or 1) == 0:
            self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_batch_end(self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int) -> None:
        if (batch_idx + 1) % (trainer.accumulate_grad_batches or 1) != 0:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            self.losses.append(math.nan)
            return
        self._average = self.beta * self._average + (1 - self.beta) * float(loss)
        smoothed = self._average / (1 - self.beta ** (len(self.losses) + 1))
        if self.early_stop_threshold is not None and self.losses and smoothed > self.early_stop_threshold * self._best:
            trainer.should_stop = True
        self._best = min(self._best, smoothed)
        self.losses.append(smoothed)


def _range_scheduler(
    optimizer: torch.optim.Optimizer, mode: str, min_lr: float, max_lr: float, steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A scheduler taking every param group from ``min_lr`` at step 0 to ``max_lr`` at step ``steps - 1``."""
    from torch.optim.lr_scheduler import LRScheduler

    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] = min_lr

    class RangeTest(LRScheduler):
        def get_lr(self) -> list[float | torch.Tensor]:
            step = self.last_epoch
            if step <= 0:
                return list(self.base_lrs)
            ratio = (step + 1) / steps
            if mode == "linear":
                return [base + ratio * (max_lr - base) for base in self.base_lrs]
            return [base * (max_lr / base) ** ratio for base in self.base_lrs]

    return RangeTest(optimizer)


def _lr_attribute(trainer: Trainer, attr_name: str) -> str:
    """The attribute holding the learning rate: ``attr_name``, else ``lr`` or ``learning_rate``."""
    from ember.core.tuning import attribute_holders

    if attr_name:
        if not attribute_holders(trainer, attr_name):
            raise MisconfigurationError(
                f"LearningRateFinder(attr_name={attr_name!r}): no such attribute on the model, model.hparams, "
                "the datamodule or datamodule.hparams"
            )
        return attr_name
    for candidate in ("lr", "learning_rate"):
        if attribute_holders(trainer, candidate):
            return candidate
    raise MisconfigurationError(
        "LearningRateFinder(update_attr=True) needs the learning rate in an attribute `lr` or `learning_rate` of the "
        "model or its hparams; name another with attr_name=..., or pass update_attr=False"
    )
