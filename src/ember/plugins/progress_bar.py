"""ProgressBar: what every progress bar shares, so custom bars only draw.

The base knows the batch totals of each stage (sanity check, training,
validation, test, predict), the stage descriptions Lightning shows, and which
metrics to display: ``v_num`` (the logger's version) followed by what the
model logged with ``prog_bar=True``. Reading the metrics converts tensors to
numbers, so subclasses call :meth:`get_metrics` only when they redraw.

A Trainer holds at most one progress bar; the default is
:class:`~ember.plugins.tqdm_progress.TQDMProgressBar`.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from ember.callback import Callback
from ember.errors import EmberWarning, MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.module import Module
    from ember.core.trainer import Trainer


class ProgressBar(Callback):
    """Base class of progress bars: totals, descriptions and displayed metrics.

    A subclass implements the hooks that draw, plus :meth:`enable` and
    :meth:`disable` (the Trainer's other ranks disable the bar in ``setup``)::

        class PercentBar(ProgressBar):
            def __init__(self):
                super().__init__()
                self.enabled = True

            def disable(self):
                self.enabled = False

            def enable(self):
                self.enabled = True

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                if self.enabled:
                    print(f"{100 * (batch_idx + 1) / self.total_train_batches:.0f}%")
    """

    def __init__(self) -> None:
        self._trainer: Trainer | None = None
        self._current_eval_dataloader_idx: int | None = None
        self._warned_duplicates = False

    @property
    def trainer(self) -> Trainer:
        if self._trainer is None:
            raise TypeError(f"{type(self).__name__}.trainer is not set yet: it is set in setup()")
        return self._trainer

    # ------------------------------------------------------------ descriptions
    @property
    def sanity_check_description(self) -> str:
        return "Sanity Checking"

    @property
    def train_description(self) -> str:
        return "Training"

    @property
    def validation_description(self) -> str:
        return "Validation"

    @property
    def test_description(self) -> str:
        return "Testing"

    @property
    def predict_description(self) -> str:
        return "Predicting"

    # ------------------------------------------------------------------ totals
    @property
    def total_train_batches(self) -> int | float:
        """Batches in this training epoch (``inf`` for an endless loader); capped by max_steps when epochs are unbounded."""
        trainer = self.trainer
        batches = trainer.num_training_batches
        if trainer.max_epochs in (None, -1) and trainer.max_steps not in (None, -1) and trainer.max_steps > 0:
            return min(batches, trainer.max_steps - trainer.global_step)
        return batches

    @property
    def total_val_batches_current_dataloader(self) -> int | float:
        """Batches of the validation dataloader running now (fewer during the sanity check)."""
        trainer = self.trainer
        index = self._current_eval_dataloader_idx or 0
        batches = trainer.num_val_batches[index] if index < len(trainer.num_val_batches) else 0
        steps = trainer.num_sanity_val_steps
        if trainer.sanity_checking and steps is not None and steps != -1:
            return min(batches, steps)
        return batches

    @property
    def total_test_batches_current_dataloader(self) -> int | float:
        """Batches of the test dataloader running now."""
        return self._current(self.trainer.num_test_batches)

    @property
    def total_predict_batches_current_dataloader(self) -> int | float:
        """Batches of the predict dataloader running now."""
        return self._current(self.trainer.num_predict_batches)

    @property
    def total_val_batches(self) -> int | float:
        """Batches of all validation dataloaders in this epoch's validation; 0 when this epoch does not validate."""
        trainer = self.trainer
        every = trainer.check_val_every_n_epoch
        if every is not None and (trainer.current_epoch + 1) % every:
            return 0
        return sum(trainer.num_val_batches)

    def eval_total_and_description(self) -> tuple[int | float, str]:
        """The running evaluation loop's batches in the current dataloader, and its description."""
        trainer = self.trainer
        if trainer.sanity_checking:
            return self.total_val_batches_current_dataloader, self.sanity_check_description
        if trainer.testing:
            return self.total_test_batches_current_dataloader, self.test_description
        if trainer.predicting:
            return self.total_predict_batches_current_dataloader, self.predict_description
        return self.total_val_batches_current_dataloader, self.validation_description

    def _current(self, counts: list[float]) -> int | float:
        index = self._current_eval_dataloader_idx or 0
        return counts[index] if index < len(counts) else 0

    def has_dataloader_changed(self, dataloader_idx: int) -> bool:
        """Record ``dataloader_idx`` as the current one; return whether it differs from the previous."""
        previous, self._current_eval_dataloader_idx = self._current_eval_dataloader_idx, dataloader_idx
        return previous != dataloader_idx

    def reset_dataloader_idx_tracker(self) -> None:
        self._current_eval_dataloader_idx = None

    # ------------------------------------------------------------ on and off
    def disable(self) -> None:
        """Stop drawing; subclasses must implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement disable()")

    def enable(self) -> None:
        """Draw again after :meth:`disable`; subclasses must implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement enable()")

    def print(self, *args: Any, **kwargs: Any) -> None:
        """Print without breaking the bar; subclasses that draw in place override it."""
        print(*args, **kwargs)

    def setup(self, trainer: Trainer, pl_module: Module, stage: str) -> None:
        self._trainer = trainer
        if not trainer.is_global_zero:
            self.disable()

    # ----------------------------------------------------------------- metrics
    def get_metrics(self, trainer: Trainer, pl_module: Module) -> dict[str, int | str | float | dict[str, float]]:
        """The items to display: ``v_num`` when there is a logger, then every ``prog_bar=True`` metric.

        Override it to change what is shown, e.g. ``items.pop("v_num", None)``.
        """
        standard = get_standard_metrics(trainer)
        shown = trainer.progress_bar_metrics
        duplicates = standard.keys() & shown.keys()
        if duplicates and not self._warned_duplicates:
            self._warned_duplicates = True
            name = sorted(duplicates)[0]
            warnings.warn(
                f"the progress bar already shows {', '.join(sorted(duplicates))}; self.log({name!r}, ..., "
                "prog_bar=True) replaces it. Rename the metric or override get_metrics() to keep both",
                EmberWarning,
                stacklevel=2,
            )
        return {**standard, **shown}


class SwitchableProgressBar(ProgressBar):
    """A bar with a refresh rate, drawn unless :meth:`disable` was called or the rate is 0; base of the built-ins."""

    def __init__(self, refresh_rate: int | float) -> None:
        super().__init__()
        self._refresh_rate = refresh_rate
        self._enabled = True

    @property
    def refresh_rate(self) -> int | float:
        return self._refresh_rate

    @property
    def is_enabled(self) -> bool:
        return self._enabled and self._refresh_rate > 0

    @property
    def is_disabled(self) -> bool:
        return not self.is_enabled

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True


def check_refresh_rate(owner: str, refresh_rate: Any, unit: str, whole: bool = True) -> None:
    """Raise unless ``refresh_rate`` is a number >= 0 (a whole number if ``whole``)."""
    number = isinstance(refresh_rate, int) or (not whole and isinstance(refresh_rate, float))
    if isinstance(refresh_rate, bool) or not number or refresh_rate < 0:
        raise MisconfigurationError(f"{owner}(refresh_rate={refresh_rate!r}): accepted are {unit} >= 0 (0 = off)")


def get_standard_metrics(trainer: Trainer) -> dict[str, int | str]:
    """``{"v_num": version}`` when the Trainer has loggers (the last four characters of a string version)."""
    loggers = trainer.loggers
    if not loggers:
        return {}
    if len(loggers) == 1:
        version = loggers[0].version
    else:
        version = "_".join(dict.fromkeys(str(logger.version) for logger in loggers))
    if version in ("", None):
        return {}
    if isinstance(version, str):
        version = version[-4:]
    return {"v_num": version}


def finite_or_none(total: int | float | None) -> int | float | None:
    """``total``, or None for an unknown (infinite or NaN) length, as drawing libraries expect."""
    if total is None or math.isinf(total) or math.isnan(total):
        return None
    return total
