"""BasePredictionWriter: write predictions out as they are made, instead of holding them all in memory.

Predicting over a large dataset, or on several processes, is easier when each
batch (or each process's whole share) goes to disk; the writer also receives
the dataset indices of every batch, so the rows can be put back in order.
Subclass it and implement :meth:`~BasePredictionWriter.write_on_batch_end`,
:meth:`~BasePredictionWriter.write_on_epoch_end`, or both.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any

from ember.callback import Callback
from ember.errors import MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.module import Module
    from ember.core.trainer import Trainer


class WriteInterval(str, Enum):
    """When a :class:`BasePredictionWriter` writes."""

    BATCH = "batch"
    EPOCH = "epoch"
    BATCH_AND_EPOCH = "batch_and_epoch"

    @property
    def on_batch(self) -> bool:
        return self in (WriteInterval.BATCH, WriteInterval.BATCH_AND_EPOCH)

    @property
    def on_epoch(self) -> bool:
        return self in (WriteInterval.EPOCH, WriteInterval.BATCH_AND_EPOCH)


class BasePredictionWriter(Callback):
    """Base class of callbacks that store what ``predict_step`` returns.

    :param write_interval: ``"batch"`` calls :meth:`write_on_batch_end` after every
        predict batch; ``"epoch"`` calls :meth:`write_on_epoch_end` once with all
        predictions; ``"batch_and_epoch"`` does both.

    With an epoch writer, predictions are gathered for it even under
    ``trainer.predict(..., return_predictions=False)``, and dropped after it ran.
    Each process writes its own share under a distributed strategy; name the
    files by ``trainer.global_rank``.
    """

    def __init__(self, write_interval: str = "batch") -> None:
        try:
            self.interval = WriteInterval(write_interval)
        except ValueError:
            accepted = ", ".join(repr(i.value) for i in WriteInterval)
            raise MisconfigurationError(
                f"{type(self).__name__}(write_interval={write_interval!r}): accepted are {accepted}"
            ) from None

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: Module,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        """Write one batch's ``prediction``; ``batch_indices`` are its samples' indices in the dataset."""
        raise NotImplementedError(
            f"{type(self).__name__} has write_interval={self.interval.value!r} but no write_on_batch_end()"
        )

    def write_on_epoch_end(
        self,
        trainer: Trainer,
        pl_module: Module,
        predictions: Sequence[Any],
        batch_indices: Sequence[Any],
    ) -> None:
        """Write all predictions: a list per batch (a list of those per dataloader with several);
        ``batch_indices`` is always one list per dataloader of one list of indices per batch."""
        raise NotImplementedError(
            f"{type(self).__name__} has write_interval={self.interval.value!r} but no write_on_epoch_end()"
        )

    def on_predict_batch_end(
        self,
        trainer: Trainer,
        pl_module: Module,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.interval.on_batch:
            indices = trainer.predict_loop.current_batch_indices
            self.write_on_batch_end(trainer, pl_module, outputs, indices, batch, batch_idx, dataloader_idx)

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: Module) -> None:
        if self.interval.on_epoch:
            loop = trainer.predict_loop
            predictions = loop.predictions[0] if len(loop.predictions) == 1 else loop.predictions
            self.write_on_epoch_end(trainer, pl_module, predictions, loop.epoch_batch_indices)
