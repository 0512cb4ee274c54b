"""A callback that saves a checkpoint and then fails, for testing that a plugin's state survives a resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ember.callback import Callback
from ember.markers import hookimpl


class SimulatedCrash(RuntimeError):
    """What :class:`CrashAfter` raises once its checkpoint is written."""


class CrashAfter(Callback):
    """Save a checkpoint to ``path`` after every other callback at the end of ``epoch`` or of optimizer step ``step``, then raise.

    Resume a fresh Trainer from ``path`` and compare with an uninterrupted
    run to check that a plugin's state survives::

        with pytest.raises(SimulatedCrash):
            trainer_factory(callbacks=[MyCallback(), CrashAfter(tmp_path / "c.ckpt", step=5)]).fit(model)
    """

    def __init__(self, path: str | Path, epoch: int | None = None, step: int | None = None) -> None:
        self.path, self.epoch, self.step = Path(path), epoch, step

    def _crash(self, trainer: Any) -> None:
        trainer.save_checkpoint(self.path)
        raise SimulatedCrash(f"simulated crash after saving {self.path}")

    @hookimpl(trylast=True)
    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            self._crash(trainer)

    @hookimpl(trylast=True)
    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.current_epoch == self.epoch:
            self._crash(trainer)
