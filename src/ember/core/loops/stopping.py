"""When training stops: max/min epochs and steps, and ``trainer.should_stop`` once the minimums are met."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer


def can_stop_early(trainer: Trainer) -> bool:
    """Whether min_epochs and min_steps allow stopping now."""
    progress = trainer.fit_progress
    return (trainer.min_epochs is None or progress.epoch >= trainer.min_epochs) and (
        trainer.min_steps is None or progress.global_step >= trainer.min_steps
    )


def max_steps_reached(trainer: Trainer) -> bool:
    max_steps = trainer.max_steps
    return max_steps is not None and max_steps >= 0 and trainer.fit_progress.global_step >= max_steps


def epoch_should_end(trainer: Trainer) -> bool:
    """After a batch: end the epoch for max_steps, or for should_stop once the minimums are met."""
    return max_steps_reached(trainer) or (trainer.should_stop and can_stop_early(trainer))


def fit_done(trainer: Trainer) -> bool:
    """Before an epoch: stop for max_epochs, max_steps, or should_stop once the minimums are met."""
    max_epochs = trainer.max_epochs
    if max_epochs is not None and max_epochs >= 0 and trainer.fit_progress.epoch >= max_epochs:
        return True
    return epoch_should_end(trainer)
