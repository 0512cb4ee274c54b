"""What a resumed fit logs: what an uninterrupted one logs, each row once, in metrics.csv and in TensorBoard.

A fit is cut short a few steps after a checkpoint saved at each of test_resume.py's save points, and
resumed from it in the same version folders. Its epoch values (a mean, a maximum, a value logged when
the epoch started) cover the whole epoch, batches before the resume included, and TensorBoard's reader
sees the cut-short attempt's scalars from after the checkpoint replaced by the resumed run's. The same
with real processes, SIGTERM and SIGKILL: test_preemption.py.
"""

from __future__ import annotations

import contextlib
import csv
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

import ember
from ember.loggers import CSVLogger, TensorBoardLogger

sys.path.insert(0, str(Path(__file__).parent))
from test_resume import SAVE_POINTS, DropoutModel, Interrupted, SaveThenStop  # noqa: E402


class EpochLogging(DropoutModel):
    """DropoutModel, logging epoch values too: a mean (``loss_epoch``), a maximum, and one logged at epoch start."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        self.log("loss", loss, on_step=True, on_epoch=True)
        self.log("largest_index", batch[2].max().float(), on_step=False, on_epoch=True, reduce_fx="max")
        return loss

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self.log("started", float(self.current_epoch))


def fit_logged(root: Path, callbacks: Any = (), seed: int = 7, ckpt_path: Any = None) -> ember.Trainer:
    """3 epochs of 8 batches, validation twice an epoch, every step logged to metrics.csv and TensorBoard."""
    ember.seed_everything(seed)
    loggers = [CSVLogger(root, version=0), TensorBoardLogger(root, name="tb", version=0)]
    trainer = ember.Trainer(max_epochs=3, val_check_interval=0.5, log_every_n_steps=1, logger=loggers,
                            callbacks=list(callbacks), enable_progress_bar=False, enable_model_summary=False,
                            enable_checkpointing=False, default_root_dir=root)  # fmt: skip
    with contextlib.suppress(Interrupted):
        trainer.fit(EpochLogging(), ckpt_path=ckpt_path)
    return trainer


def rows(root: Path) -> list[dict[str, str]]:
    with open(root / "ember_logs" / "version_0" / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def scalars(root: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard shows for the run, by tag: (step, value) in the order it reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    reader = EventAccumulator(str(root / "tb" / "version_0"))
    reader.Reload()
    return {tag: [(event.step, event.value) for event in reader.Scalars(tag)] for tag in reader.Tags()["scalars"]}


def assert_same_scalars(root: Path, reference: Path) -> None:
    """TensorBoard shows the run at ``root`` as the one at ``reference``: each scalar once, with the same values."""
    shown = scalars(root)
    assert shown == scalars(reference)
    for tag, events in shown.items():
        steps = [step for step, _ in events]
        if tag != "epoch":  # every row carries the epoch: a step with a training and a validation row has it twice
            assert len(steps) == len(set(steps)), tag


def next_second() -> None:
    """TensorBoard reads a folder's event files in name order, and a name starts with the second it was made:
    a restart within the same second as the first attempt (possible only in one process) would sort first."""
    now = int(time.time())
    while int(time.time()) == now:
        time.sleep(0.05)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("full")
    fit_logged(root)
    return root


@pytest.fixture(scope="module", params=SAVE_POINTS)
def resumed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resumed")
    fit_logged(root, [SaveThenStop(root / "run.ckpt", *SAVE_POINTS[request.param])])
    next_second()
    fit_logged(root, seed=99, ckpt_path=root / "run.ckpt")
    return root


def test_metrics_csv_of_a_resumed_fit_equals_an_uninterrupted_ones_epoch_values_included(
    resumed: Path, uninterrupted: Path
) -> None:
    expected = rows(uninterrupted)
    assert {"loss_epoch", "largest_index", "started"} <= expected[0].keys()
    assert rows(resumed) == expected


def test_tensorboard_shows_each_scalar_of_a_resumed_fit_once_with_the_uninterrupted_values(
    resumed: Path, uninterrupted: Path
) -> None:
    assert_same_scalars(resumed, uninterrupted)
    assert scalars(resumed)["hp_metric"] == [(0, -1.0)]  # the resumed fit did not log it again


def test_a_checkpoint_holds_the_epochs_values_so_far_as_plain_tensors(tmp_path: Path) -> None:
    fit_logged(tmp_path, [SaveThenStop(tmp_path / "run.ckpt", "on_train_batch_end", 11)])
    saved = torch.load(tmp_path / "run.ckpt", weights_only=True)["loops"]["fit_loop"]["metrics"]
    assert saved["epoch"]["loss"]["values"].shape == (3,)  # steps 9 to 11: the first 3 batches of epoch 1
    assert saved["epoch"]["loss"]["sizes"].tolist() == [6, 6, 6]
    assert saved["epoch"]["largest_index"]["reduce_fx"] == "max"
    assert set(saved["epoch"]) == {"loss", "largest_index", "started"}


def test_a_checkpoint_without_the_epochs_values_still_resumes(tmp_path: Path) -> None:
    fit_logged(tmp_path / "cut", [SaveThenStop(tmp_path / "run.ckpt", "on_train_batch_end", 11)])
    checkpoint = torch.load(tmp_path / "run.ckpt", weights_only=True)
    del checkpoint["loops"]["fit_loop"]["metrics"]  # as ember wrote checkpoints before it saved them
    torch.save(checkpoint, tmp_path / "old.ckpt")
    trainer = fit_logged(tmp_path / "resumed", ckpt_path=tmp_path / "old.ckpt")
    assert (trainer.global_step, trainer.current_epoch) == (24, 3)
