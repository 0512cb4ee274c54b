"""Predict: ``predict_step`` over the predict dataloaders, keeping what it returns."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch

from ember.core.data import IndexRecorder, batches
from ember.core.loops.dispatch import call_batch_hook, module_batch_hook, replaced, transfer_batch
from ember.core.signatures import with_indices
from ember.core.state import RunningStage
from ember.errors import MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer


class PredictionLoop:
    """``trainer.predict_loop``: the predictions and batch indices of the last predict run.

    Prediction writers read ``predictions`` and ``epoch_batch_indices`` at
    ``on_predict_epoch_end``; both are lists per dataloader.
    """

    def __init__(self) -> None:
        self.predictions: list[list[Any]] = []
        self.epoch_batch_indices: list[list[list[int]]] = []
        self.current_batch_indices: list[int] = []
        self.return_predictions = True


def run_prediction(trainer: Trainer, return_predictions: bool) -> Any:
    """Run predict; return the predictions (one list per dataloader when there are several)."""
    module = trainer.lightning_module
    if not callable(getattr(module, "predict_step", None)):
        raise MisconfigurationError(f"{type(module).__qualname__} has no predict_step(); Trainer.predict() needs one")
    trainer._load_loaders("predict")
    loaders, counts = trainer._loaders["predict"], trainer._counts("predict")
    loop = trainer.predict_loop = PredictionLoop()
    loop.return_predictions = return_predictions
    loop.predictions = [[] for _ in loaders]
    loop.epoch_batch_indices = [[] for _ in loaders]
    keep = return_predictions or _feeds_epoch_writer(trainer)
    several = len(loaders) > 1
    step = with_indices(module.predict_step, several)  # type: ignore[union-attr,arg-type]
    module_start = module_batch_hook(trainer, "on_predict_batch_start", several)
    module_end = module_batch_hook(trainer, "on_predict_batch_end", several)
    trainer.state.stage = RunningStage.PREDICTING
    trainer._fx = "on_predict_model_eval"
    module.on_predict_model_eval()  # type: ignore[union-attr]
    grad_off = torch.inference_mode() if trainer.inference_mode else torch.no_grad()
    replace_outputs = trainer._callers.get("ember_predict_outputs")
    with grad_off:
        trainer._hook("on_predict_start")
        trainer._hook("on_predict_epoch_start")
        for dataloader_idx, (loader, count) in enumerate(zip(loaders, counts)):
            recorder = IndexRecorder.wrap(loader)
            with contextlib.closing(batches(recorder.loader, count)) as iterator:
                for batch_idx, batch, _ in iterator:
                    loop.current_batch_indices = recorder.next_indices()
                    batch = transfer_batch(trainer, batch, dataloader_idx)
                    call_batch_hook(trainer, "on_predict_batch_start", batch, batch_idx, dataloader_idx, module_start)
                    trainer._fx = "predict_step"
                    with trainer._precision.forward_context():
                        output = step(batch, batch_idx, dataloader_idx)
                    if replace_outputs is not None:
                        output = replaced(replace_outputs, trainer, output, batch, batch_idx, dataloader_idx)
                    call_batch_hook(
                        trainer, "on_predict_batch_end", batch, batch_idx, dataloader_idx, module_end, output
                    )
                    if keep:
                        loop.predictions[dataloader_idx].append(output)
                        loop.epoch_batch_indices[dataloader_idx].append(loop.current_batch_indices)
        trainer._hook("on_predict_epoch_end")
        if not return_predictions:  # they were kept for the prediction writers only
            loop.predictions = [[] for _ in loaders]
            loop.epoch_batch_indices = [[] for _ in loaders]
        trainer._hook("on_predict_end")
    if not return_predictions:
        return None
    return loop.predictions if several else loop.predictions[0]


def _feeds_epoch_writer(trainer: Trainer) -> bool:
    """Whether a prediction writer wants every prediction at the epoch's end."""
    from ember.plugins.prediction_writer import BasePredictionWriter

    return any(isinstance(c, BasePredictionWriter) and c.interval.on_epoch for c in trainer.callbacks)
