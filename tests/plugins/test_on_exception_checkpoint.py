"""OnExceptionCheckpoint: a failing run leaves a checkpoint of where it failed; a successful one leaves none."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ember
from ember.callbacks import ModelCheckpoint, OnExceptionCheckpoint
from ember.errors import MisconfigurationError
from ember.testing import TinyModel


class FailsAt(TinyModel):
    """Raises RuntimeError("boom") (or KeyboardInterrupt) at training batch ``batch_idx`` of epoch ``epoch``."""

    def __init__(self, epoch: int, batch_idx: int, interrupt: bool = False) -> None:
        super().__init__()
        self.at, self.interrupt = (epoch, batch_idx), interrupt

    def training_step(self, batch, batch_idx):
        if (self.current_epoch, batch_idx) == self.at:
            raise KeyboardInterrupt if self.interrupt else RuntimeError("boom")
        return super().training_step(batch, batch_idx)


def trainer_with(root: Path, *callbacks, **flags) -> ember.Trainer:
    options = dict(max_epochs=2, logger=False, enable_progress_bar=False, enable_model_summary=False)
    options.update(flags)
    return ember.Trainer(callbacks=list(callbacks), default_root_dir=str(root), **options)


def test_saves_a_checkpoint_when_fit_raises(tmp_path) -> None:
    callback = OnExceptionCheckpoint(dirpath=tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        trainer_with(tmp_path, callback).fit(FailsAt(epoch=1, batch_idx=2))
    assert callback.ckpt_path == str(tmp_path / "on_exception.ckpt")
    saved = torch.load(tmp_path / "on_exception.ckpt", weights_only=True)
    assert (saved["epoch"], saved["global_step"]) == (1, 10)
    assert "optimizer_states" in saved


def test_the_filename_is_configurable(tmp_path) -> None:
    with pytest.raises(RuntimeError):
        trainer_with(tmp_path, OnExceptionCheckpoint(tmp_path / "crash", filename="oops")).fit(FailsAt(0, 0))
    assert sorted(p.name for p in (tmp_path / "crash").iterdir()) == ["oops.ckpt"]


def test_keyboard_interrupt_is_saved_too(tmp_path) -> None:
    with pytest.raises(SystemExit):
        trainer_with(tmp_path, OnExceptionCheckpoint(tmp_path)).fit(FailsAt(0, 3, interrupt=True))
    assert torch.load(tmp_path / "on_exception.ckpt", weights_only=True)["global_step"] == 3


def test_a_successful_run_leaves_no_file_and_removes_a_stale_one(tmp_path) -> None:
    stale = tmp_path / "on_exception.ckpt"
    stale.write_bytes(b"left over from a crash")
    trainer_with(tmp_path, OnExceptionCheckpoint(tmp_path)).fit(TinyModel())
    assert not stale.exists()


def test_training_resumes_from_the_saved_checkpoint(tmp_path) -> None:
    with pytest.raises(RuntimeError):
        trainer_with(tmp_path, OnExceptionCheckpoint(tmp_path / "crash")).fit(FailsAt(1, 2))
    trainer = trainer_with(tmp_path, OnExceptionCheckpoint(tmp_path / "crash"))
    trainer.fit(TinyModel(), ckpt_path=tmp_path / "crash" / "on_exception.ckpt")
    assert (trainer.current_epoch, trainer.global_step) == (2, 16)


def test_counts_as_a_checkpoint_callback(tmp_path) -> None:
    callback = OnExceptionCheckpoint(tmp_path)
    trainer = trainer_with(tmp_path, callback)
    assert trainer.checkpoint_callbacks == [callback]  # it replaces the default ModelCheckpoint, as in Lightning
    assert not any(isinstance(c, ModelCheckpoint) for c in trainer.callbacks)
    with pytest.raises(MisconfigurationError, match="enable_checkpointing=False"):
        trainer_with(tmp_path, callback, enable_checkpointing=False)


def test_runs_after_other_callbacks_on_exception(tmp_path) -> None:
    seen: list[str] = []

    class Other(ember.Callback):
        def on_exception(self, trainer, pl_module, exception):
            seen.append("other")

    class Spy(OnExceptionCheckpoint):
        def on_exception(self, trainer, pl_module, exception):
            seen.append("checkpoint")

    with pytest.raises(RuntimeError):
        trainer_with(tmp_path, Spy(tmp_path), Other()).fit(FailsAt(0, 0))
    assert seen == ["other", "checkpoint"]


def test_an_empty_filename_is_an_error() -> None:
    with pytest.raises(MisconfigurationError, match="filename=''"):
        OnExceptionCheckpoint(".", filename="")
