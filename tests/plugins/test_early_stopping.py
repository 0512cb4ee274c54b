"""EarlyStopping: the epoch a real fit stops at, why, what it prints, and its state across a resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import ember
from ember.callbacks import EarlyStopping, ModelCheckpoint
from ember.errors import EmberWarning, MisconfigurationError
from ember.plugins.early_stopping import EarlyStoppingReason
from ember.testing import TinyModel, make_trainer


class ValLossSequence(TinyModel):
    """Logs ``val_loss`` = ``values[k]`` at the k-th validation run (the last value repeats); a fixed script."""

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.values, self.runs = values, 0

    def on_validation_epoch_start(self):
        self.runs += 0 if self.trainer.sanity_checking else 1

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.values[min(self.runs, len(self.values)) - 1])


def run(root: Path, model: ember.Module, *callbacks, ckpt_path=None, **flags) -> ember.Trainer:
    """Fit up to 20 epochs of two batches; checkpointing only when a ModelCheckpoint is given."""
    saves = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    options = {
        "max_epochs": 20,
        "limit_train_batches": 2,
        "limit_val_batches": 1,
        "enable_checkpointing": saves,
        **flags,
    }
    trainer = make_trainer(root, callbacks=list(callbacks), **options)
    trainer.fit(model, ckpt_path=ckpt_path)
    return trainer


def test_stops_when_patience_is_exhausted(tmp_path) -> None:
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    trainer = run(tmp_path, ValLossSequence([0.5, 0.4, 0.45, 0.41, 0.3]), stopper)
    assert trainer.current_epoch == 4  # epochs 0..3 ran; the check after epoch 3 stopped it
    assert stopper.stopped_epoch == 3
    assert stopper.wait_count == 2
    assert stopper.best_score.item() == pytest.approx(0.4)
    assert stopper.stopping_reason is EarlyStoppingReason.PATIENCE_EXHAUSTED
    assert stopper.stopping_reason_message == (
        "Monitored metric val_loss did not improve in the last 2 records. Best score: 0.400. Signaling Trainer to stop."
    )


def test_an_equal_value_is_no_improvement(tmp_path) -> None:
    stopper = EarlyStopping(monitor="val_loss", patience=1)
    trainer = run(tmp_path, ValLossSequence([0.5, 0.5]), stopper)
    assert trainer.current_epoch == 2
    assert stopper.stopped_epoch == 1


def test_min_delta_requires_a_larger_improvement(tmp_path) -> None:
    stopper = EarlyStopping(monitor="val_loss", patience=1, min_delta=0.1)
    run(tmp_path, ValLossSequence([0.5, 0.45]), stopper)
    assert stopper.stopped_epoch == 1
    assert stopper.best_score.item() == pytest.approx(0.5)


def test_mode_max_waits_for_an_increase(tmp_path) -> None:
    stopper = EarlyStopping(monitor="val_loss", mode="max", patience=1)
    trainer = run(tmp_path, ValLossSequence([0.1, 0.2, 0.3, 0.2]), stopper)
    assert trainer.current_epoch == 4
    assert stopper.best_score.item() == pytest.approx(0.3)


def test_not_stopped_when_the_metric_keeps_improving(tmp_path) -> None:
    stopper = EarlyStopping(monitor="val_loss", patience=1)
    trainer = run(tmp_path, ValLossSequence([0.5, 0.4, 0.3]), stopper, max_epochs=3)
    assert trainer.current_epoch == 3
    assert stopper.stopped_epoch == 0
    assert stopper.stopping_reason is EarlyStoppingReason.NOT_STOPPED
    assert stopper.stopping_reason_message is None


@pytest.mark.parametrize(
    ("values", "kwargs", "reason", "stopped"),
    [
        ([0.5, 0.3, 0.09], {"stopping_threshold": 0.1}, EarlyStoppingReason.STOPPING_THRESHOLD, 2),
        ([0.5, 0.3, 2.0], {"divergence_threshold": 1.0}, EarlyStoppingReason.DIVERGENCE_THRESHOLD, 2),
        ([0.5, math.nan], {}, EarlyStoppingReason.NON_FINITE_METRIC, 1),
        ([0.5, math.inf], {}, EarlyStoppingReason.NON_FINITE_METRIC, 1),
    ],
)
def test_thresholds_and_non_finite_values_stop_at_once(tmp_path, values, kwargs, reason, stopped) -> None:
    stopper = EarlyStopping(monitor="val_loss", patience=100, **kwargs)
    trainer = run(tmp_path, ValLossSequence(values), stopper)
    assert stopper.stopping_reason is reason
    assert stopper.stopped_epoch == stopped
    assert trainer.current_epoch == stopped + 1


def test_check_finite_false_counts_nan_as_no_improvement(tmp_path) -> None:
    stopper = EarlyStopping(monitor="val_loss", patience=2, check_finite=False)
    run(tmp_path, ValLossSequence([0.5, math.nan]), stopper)
    assert stopper.stopping_reason is EarlyStoppingReason.PATIENCE_EXHAUSTED
    assert stopper.stopped_epoch == 2


def test_verbose_logs_each_improvement_and_the_stop(tmp_path, caplog) -> None:
    run(tmp_path, ValLossSequence([0.5, 0.4, 0.4]), EarlyStopping(monitor="val_loss", patience=1, verbose=True))
    assert [r.getMessage() for r in caplog.records if r.name.startswith("ember")] == [
        "Metric val_loss improved. New best score: 0.500",
        "Metric val_loss improved by 0.100 >= min_delta = 0.0. New best score: 0.400",
        "Monitored metric val_loss did not improve in the last 1 records. Best score: 0.400. Signaling Trainer to stop.",
    ]


def test_strict_missing_monitor_raises_listing_the_logged_metrics(tmp_path) -> None:
    with pytest.raises(RuntimeError, match=r"'val_acc'.*\['train_loss', 'val_loss'\]"):
        run(tmp_path, ValLossSequence([0.5]), EarlyStopping(monitor="val_acc"))


def test_strict_is_not_checked_during_the_sanity_check(tmp_path) -> None:
    class LogsAfterSanity(TinyModel):
        def validation_step(self, batch, batch_idx):
            if not self.trainer.sanity_checking:
                self.log("val_acc", 1.0)

    stopper = EarlyStopping(monitor="val_acc", mode="max", patience=1, check_on_train_epoch_end=False)
    trainer = run(tmp_path, LogsAfterSanity(), stopper, num_sanity_val_steps=1)
    assert trainer.current_epoch == 2


def test_not_strict_missing_monitor_skips_the_check(tmp_path) -> None:
    trainer = run(tmp_path, TinyModel(), EarlyStopping(monitor="val_acc", strict=False), max_epochs=3)
    assert trainer.current_epoch == 3
    with pytest.warns(EmberWarning, match="'val_acc'"):
        run(tmp_path, TinyModel(), EarlyStopping(monitor="val_acc", strict=False, verbose=True), max_epochs=1)


def test_acts_after_the_modules_on_train_epoch_end(tmp_path) -> None:
    class LogsAtEpochEnd(TinyModel):
        def on_train_epoch_end(self):
            self.log("score", 1.0)

    stopper = EarlyStopping(monitor="score", patience=2)
    trainer = run(tmp_path, LogsAtEpochEnd(), stopper)
    assert trainer.current_epoch == 3
    assert stopper.best_score.item() == 1.0


def test_validation_twice_an_epoch_checks_after_each_validation(tmp_path) -> None:
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    trainer = run(tmp_path, ValLossSequence([0.5]), stopper, limit_train_batches=8, val_check_interval=0.5)
    assert stopper.stopped_epoch == 1  # checks: improve, wait 1 (epoch 0), wait 2 (middle of epoch 1)
    assert trainer.global_step == 12
    assert trainer.current_epoch == 2


def test_validation_every_other_epoch_checks_after_validation(tmp_path) -> None:
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    trainer = run(tmp_path, ValLossSequence([0.5]), stopper, check_val_every_n_epoch=2)
    assert stopper.stopped_epoch == 5  # validations after epochs 1, 3, 5
    assert trainer.current_epoch == 6


def test_check_on_train_epoch_end_can_be_forced(tmp_path) -> None:
    stopper = EarlyStopping(monitor="val_loss", patience=2, check_on_train_epoch_end=True)
    trainer = run(tmp_path, ValLossSequence([0.5]), stopper, limit_train_batches=8, val_check_interval=0.5)
    assert stopper.stopped_epoch == 2  # one check per epoch end: improve, wait 1, wait 2
    assert trainer.global_step == 24


def test_does_nothing_under_fast_dev_run(tmp_path) -> None:
    stopper = EarlyStopping(monitor="val_loss", patience=0)
    trainer = run(tmp_path, TinyModel(), stopper, fast_dev_run=True)
    assert not trainer.should_stop
    assert stopper.wait_count == 0


def test_bad_mode_is_an_error_naming_it() -> None:
    with pytest.raises(MisconfigurationError, match="mode='maximum'"):
        EarlyStopping(monitor="val_loss", mode="maximum")


def test_state_key_names_monitor_and_mode() -> None:
    assert (
        EarlyStopping(monitor="val_loss", mode="max").state_key == "EarlyStopping{'monitor': 'val_loss', 'mode': 'max'}"
    )


# --------------------------------------------------------------------- resume
def test_resume_restores_wait_count_and_best_score(tmp_path) -> None:
    values = [0.5, 0.4, 0.45, 0.45, 0.45, 0.45]
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    first = EarlyStopping(monitor="val_loss", patience=3)
    run(tmp_path, ValLossSequence(values), first, checkpoint, max_epochs=3)
    assert (first.wait_count, round(first.best_score.item(), 3)) == (1, 0.4)
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)["callbacks"][first.state_key]
    assert saved["wait_count"] == 1

    restored = EarlyStopping(monitor="val_loss", patience=3)
    with pytest.warns(EmberWarning, match="not empty"):
        run(tmp_path, ValLossSequence(values), restored, ModelCheckpoint(dirpath=tmp_path), max_epochs=3,
            ckpt_path=tmp_path / "last.ckpt")  # fmt: skip
    assert restored.wait_count == 1
    assert restored.best_score.item() == pytest.approx(0.4)


def test_patience_carries_over_a_resume(tmp_path) -> None:
    """Two more checks without improvement after the resume exhaust a patience of 3 (one was spent before)."""
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    run(tmp_path, ValLossSequence([0.5, 0.4, 0.45]), EarlyStopping(monitor="val_loss", patience=3), checkpoint,
        max_epochs=3)  # fmt: skip
    resumed = EarlyStopping(monitor="val_loss", patience=3)
    with pytest.warns(EmberWarning, match="not empty"):
        trainer = run(tmp_path, ValLossSequence([0.45]), resumed, ModelCheckpoint(dirpath=tmp_path),
                      ckpt_path=tmp_path / "last.ckpt")  # fmt: skip
    assert resumed.stopped_epoch == 4
    assert trainer.current_epoch == 5


def test_two_instances_on_different_monitors_keep_separate_states(tmp_path) -> None:
    class TwoMetrics(ValLossSequence):
        def validation_step(self, batch, batch_idx):
            super().validation_step(batch, batch_idx)
            self.log("val_acc", 0.9)

    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    loss, acc = EarlyStopping(monitor="val_loss", patience=5), EarlyStopping(monitor="val_acc", mode="max", patience=5)
    run(tmp_path, TwoMetrics([0.5, 0.6]), loss, acc, checkpoint, max_epochs=2)
    assert (loss.wait_count, acc.wait_count) == (1, 1)
    loss2, acc2 = (
        EarlyStopping(monitor="val_loss", patience=5),
        EarlyStopping(monitor="val_acc", mode="max", patience=5),
    )
    with pytest.warns(EmberWarning, match="not empty"):
        run(tmp_path, TwoMetrics([0.5]), loss2, acc2, ModelCheckpoint(dirpath=tmp_path), max_epochs=2,
            ckpt_path=tmp_path / "last.ckpt")  # fmt: skip
    assert loss2.best_score.item() == pytest.approx(0.5)
    assert acc2.best_score.item() == pytest.approx(0.9)
