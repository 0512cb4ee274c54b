"""OnExceptionCheckpoint: save a checkpoint when a run raises, so a crash or Ctrl-C loses nothing.

It behaves as Lightning's OnExceptionCheckpoint. ``dirpath`` is required
because an exception can come before any setup hook could pick a folder. A
run that ends normally removes the file in ``teardown``, so one found on disk
always comes from a failed run.

Importing this module does not import torch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ember.callback import Checkpoint
from ember.core import filesystem
from ember.errors import MisconfigurationError
from ember.markers import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.module import Module
    from ember.core.trainer import Trainer


class OnExceptionCheckpoint(Checkpoint):
    """Save ``dirpath/filename.ckpt`` when fit, validate, test or predict raises.

    :param dirpath: the folder to save in.
    :param filename: the file name without the ``.ckpt`` extension.
    """

    FILE_EXTENSION = ".ckpt"

    def __init__(self, dirpath: str | os.PathLike[str], filename: str = "on_exception") -> None:
        if not filename:
            raise MisconfigurationError(f"OnExceptionCheckpoint(filename={filename!r}): the filename cannot be empty")
        self.dirpath = dirpath
        self.filename = filename

    @property
    def ckpt_path(self) -> str:
        """Where the checkpoint is written."""
        return filesystem.join(self.dirpath, self.filename + self.FILE_EXTENSION)

    @hookimpl(trylast=True)
    def on_exception(self, trainer: Trainer, pl_module: Module, exception: BaseException) -> None:
        trainer.save_checkpoint(self.ckpt_path)

    @hookimpl(trylast=True)
    def teardown(self, trainer: Trainer, pl_module: Module, stage: str) -> None:
        if trainer.is_global_zero:
            filesystem.remove(self.ckpt_path)
