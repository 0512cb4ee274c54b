"""What a run is doing and how far it got: the stage names and the progress counters.

The counters are plain integers so that checkpoints hold them as such and a
resumed run continues from exactly where the saved one was.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class TrainerFn(str, Enum):
    """The user-facing entry point that is running (``trainer.state.fn``)."""

    FITTING = "fit"
    VALIDATING = "validate"
    TESTING = "test"
    PREDICTING = "predict"


class RunningStage(str, Enum):
    """The loop that is running (``trainer.state.stage``)."""

    TRAINING = "train"
    SANITY_CHECKING = "sanity_check"
    VALIDATING = "validate"
    TESTING = "test"
    PREDICTING = "predict"

    @property
    def evaluating(self) -> bool:
        return self in (RunningStage.SANITY_CHECKING, RunningStage.VALIDATING, RunningStage.TESTING)

    @property
    def dataloader_prefix(self) -> str:
        """The prefix of this stage's ``*_dataloader`` method and its hooks (``val`` for validation)."""
        return {"sanity_check": "val", "validate": "val"}.get(self.value, self.value)

    @property
    def hook_prefix(self) -> str:
        """The middle of this stage's hook names: ``on_<prefix>_batch_start``."""
        return {"sanity_check": "validation", "validate": "validation"}.get(self.value, self.value)


class TrainerStatus(str, Enum):
    """Whether the Trainer is idle, running, done, or was stopped by an exception."""

    INITIALIZING = "initializing"
    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"


@dataclass
class TrainerState:
    """``trainer.state``: fn, stage and status."""

    status: TrainerStatus = TrainerStatus.INITIALIZING
    fn: TrainerFn | None = None
    stage: RunningStage | None = None

    @property
    def finished(self) -> bool:
        return self.status == TrainerStatus.FINISHED

    @property
    def stopped(self) -> bool:
        return self.status == TrainerStatus.INTERRUPTED


@dataclass
class FitProgress:
    """How far fit got; saved in checkpoints so that a resume continues mid-epoch.

    ``batches_in_epoch`` counts the training batches completed in the current
    epoch; ``stepped_batches`` counts the batches that ended an accumulation
    window over the whole run (the step index loggers see); ``epoch_done``
    is True while the epoch-end hooks run, so a checkpoint saved then resumes
    at the next epoch; ``epoch_rng`` is the random state the epoch's batch
    order was drawn from, from which a mid-epoch resume rebuilds that order.
    ``pending`` describes the batch whose optimizer step is done but whose
    end (counting, validation, stepping) is not, from ``on_train_batch_end``
    until that end, so a checkpoint saved then resumes by finishing it.
    ``cut`` is set when ``max_steps`` ended an epoch before its data ran out:
    the epoch, its completed batches and its ``epoch_rng``, from which a
    resumed fit continues that epoch at the next batch.
    ``resume_rng`` is not saved: it holds the random state of the checkpoint
    a fit resumes from, until training continues from it.
    """

    epoch: int = 0
    global_step: int = 0
    batches_in_epoch: int = 0
    total_batches: int = 0
    stepped_batches: int = 0
    epoch_done: bool = False
    epoch_rng: dict[str, Any] | None = field(default=None, repr=False)
    pending: dict[str, Any] | None = None
    cut: dict[str, Any] | None = field(default=None, repr=False)
    resume_rng: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def restarting(self) -> bool:
        """Whether fit resumed from a checkpoint and has not continued training yet."""
        return self.resume_rng is not None

    def state_dict(self) -> dict[str, Any]:
        state = asdict(self)
        del state["resume_rng"]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            if hasattr(self, name):
                setattr(self, name, value)
