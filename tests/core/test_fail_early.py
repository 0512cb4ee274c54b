"""Fail early: an unwritable checkpoint folder stops fit before the first batch, killed saves' leftovers go at
the next start, and a non-finite loss is reported once with its step."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import warnings

import pytest

import ember
from ember.callbacks import ModelCheckpoint
from ember.errors import EmberWarning, MisconfigurationError
from ember.testing import TinyModel


class CountsBatches(TinyModel):
    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def training_step(self, batch, batch_idx):
        self.batches += 1
        return super().training_step(batch, batch_idx)


class GoesNaN(TinyModel):
    """Its loss is NaN from training step ``at`` on."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        loss = loss["loss"] if isinstance(loss, dict) else loss
        return loss * float("nan") if self.trainer.global_step >= self.at else loss


def quiet_trainer(root, *callbacks, **flags) -> ember.Trainer:
    options = dict(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False)
    options.update(flags)
    return ember.Trainer(callbacks=list(callbacks), default_root_dir=str(root), **options)


def test_an_unwritable_checkpoint_folder_fails_before_the_first_batch(tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    model = CountsBatches()
    with pytest.raises(MisconfigurationError, match="a-file") as caught:
        quiet_trainer(tmp_path, ModelCheckpoint(dirpath=blocker / "checkpoints")).fit(model)
    assert "dirpath=" in str(caught.value)
    assert model.batches == 0


@pytest.mark.filterwarnings("ignore:checkpoint directory")
def test_temporaries_of_killed_saves_are_removed_at_the_next_start(tmp_path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    host = socket.gethostname()
    killed_file = tmp_path / f".epoch=0-step=4.ckpt.tmp-{host}-{dead_pid}"
    killed_file.write_bytes(b"half a checkpoint")
    killed_folder = tmp_path / f".last.ckpt.tmp-{host}-{dead_pid}"
    killed_folder.mkdir()
    (killed_folder / "__0_0.distcp").write_bytes(b"half a shard")
    concurrent = tmp_path / f".other.ckpt.tmp-{host}-{os.getpid()}"  # a live writer: another run's save
    concurrent.write_bytes(b"being written")
    elsewhere = tmp_path / f".x.ckpt.tmp-another-host-{dead_pid}"  # a PID of another machine means nothing here
    elsewhere.write_bytes(b"someone else's")
    quiet_trainer(tmp_path, ModelCheckpoint(dirpath=tmp_path), max_steps=1).fit(TinyModel())
    assert not killed_file.exists() and not killed_folder.exists()
    assert concurrent.exists() and elsewhere.exists()


def test_a_non_finite_loss_warns_once_naming_the_step(tmp_path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(tmp_path, max_steps=6).fit(GoesNaN(at=3))
    found = [str(w.message) for w in caught if issubclass(w.category, EmberWarning) and "nan" in str(w.message)]
    assert len(found) == 1
    assert "global_step=3" in found[0]


def test_a_finite_run_gives_no_such_warning(tmp_path) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*training loss is.*")
        quiet_trainer(tmp_path, max_steps=3).fit(TinyModel())


class ManualGoesNaN(GoesNaN):
    def __init__(self, at: int) -> None:
        super().__init__(at)
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        optimizer = self.optimizers()
        optimizer.zero_grad()
        loss = super().training_step(batch, batch_idx)
        self.manual_backward(loss)
        optimizer.step()
        return loss


def test_manual_optimization_gets_the_same_warning(tmp_path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(tmp_path, max_steps=5).fit(ManualGoesNaN(at=2))
    found = [str(w.message) for w in caught if "training loss is nan" in str(w.message)]
    assert len(found) == 1 and "global_step=2" in found[0]
