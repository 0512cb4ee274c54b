"""Fit: the sanity check, then training epochs until a stopping condition holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ember.core.data import limited_length
from ember.core.loops.evaluation import run_evaluation
from ember.core.loops.stopping import fit_done
from ember.core.loops.training_epoch import TrainingEpoch
from ember.core.state import RunningStage

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer


def run_fit(trainer: Trainer) -> None:
    """Sanity check, on_train_start, epochs, on_train_end."""
    _sanity_check(trainer)
    trainer._load_loaders("train")
    epoch_loop = TrainingEpoch(trainer)
    trainer.state.stage = RunningStage.TRAINING
    trainer._metrics.use("train", training=True)
    # no model.train() here, as in Lightning 2.2+: submodules the user put in eval() (a frozen backbone) stay so
    trainer._hook("on_train_start")
    if trainer.profiler is not None:
        trainer.profiler.training_started()
    progress = trainer.fit_progress
    with torch.enable_grad():  # training steps need gradients even if fit() was called under no_grad
        while not fit_done(trainer):
            if trainer.reload_dataloaders_every_n_epochs and progress.batches_in_epoch == 0 and progress.epoch > 0:
                if progress.epoch % trainer.reload_dataloaders_every_n_epochs == 0:
                    trainer._load_loaders("train")
            epoch_loop.run()
            if trainer.num_training_batches == 0:
                break
    if trainer.profiler is not None:
        trainer.profiler.training_ended()
    trainer.state.stage = RunningStage.TRAINING
    trainer._hook("on_train_end")


def _sanity_check(trainer: Trainer) -> None:
    steps = trainer.num_sanity_val_steps
    if steps == 0 or not trainer._validation_enabled() or trainer.fit_progress.restarting:
        return
    loaders = trainer._loaders.get("val")
    trainer.sanity_checking = True
    trainer.state.stage = RunningStage.SANITY_CHECKING
    trainer._hook("on_sanity_check_start")
    if loaders is None:
        trainer._load_loaders("val")
        loaders = trainer._loaders["val"]
    available = [limited_length(loader, trainer.limit_val_batches, "limit_val_batches") for loader in loaders]
    counts = available if steps == -1 else [min(float(steps or 0), count) for count in available]
    run_evaluation(trainer, RunningStage.SANITY_CHECKING, loaders, counts)
    trainer.state.stage = RunningStage.SANITY_CHECKING
    trainer._hook("on_sanity_check_end")
    trainer.sanity_checking = False
    trainer._metrics.reset()
