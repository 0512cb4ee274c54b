"""ProgressBar, the base class: totals per stage, displayed metrics, one bar per Trainer, the default bar."""

from __future__ import annotations

import math

import pytest
import torch

import ember
from ember.callbacks import ProgressBar, RichProgressBar, TQDMProgressBar
from ember.errors import EmberWarning, MisconfigurationError
from ember.loggers import CSVLogger
from ember.testing import TinyModel


class RecordingBar(ProgressBar):
    """A minimal custom bar, as a user writes one: it records the totals and metrics it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.enabled = True
        self.seen: dict[str, list[object]] = {}

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def note(self, key: str, value: object) -> None:
        self.seen.setdefault(key, []).append(value)

    def on_train_epoch_start(self, trainer, pl_module):
        self.note("train", self.total_train_batches)
        self.note("val_this_epoch", self.total_val_batches)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.note("metrics", self.get_metrics(trainer, pl_module))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.has_dataloader_changed(dataloader_idx)
        self.note("sanity" if trainer.sanity_checking else "val", self.total_val_batches_current_dataloader)
        self.note("description", self.eval_total_and_description()[1])

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.has_dataloader_changed(dataloader_idx)
        self.note("test", self.total_test_batches_current_dataloader)

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.has_dataloader_changed(dataloader_idx)
        self.note("predict", self.total_predict_batches_current_dataloader)


class ShowsLoss(TinyModel):
    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("loss", loss, prog_bar=True)
        self.log("not_shown", loss)
        return loss

    def test_step(self, batch, batch_idx, dataloader_idx=0):
        return None

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        return self(batch[0])


def test_totals_for_each_stage(trainer_factory) -> None:
    bar = RecordingBar()
    trainer = trainer_factory(callbacks=[bar], enable_progress_bar=None, max_epochs=2, limit_train_batches=5)
    model = ShowsLoss()
    trainer.fit(model)
    assert bar.seen["train"] == [5, 5]
    assert bar.seen["val_this_epoch"] == [4, 4]
    assert set(bar.seen["sanity"]) == {2} and set(bar.seen["val"]) == {4}
    assert bar.seen["description"][:2] == ["Sanity Checking"] * 2 and bar.seen["description"][-1] == "Validation"
    loaders = [model.test_dataloader(), torch.utils.data.DataLoader(model._data.test_dataloader().dataset, 16)]
    trainer.test(model, dataloaders=loaders, verbose=False)
    assert bar.seen["test"] == [4] * 4 + [2] * 2
    trainer.predict(model, dataloaders=loaders)
    assert bar.seen["predict"] == [4] * 4 + [2] * 2


def test_validation_total_is_zero_in_epochs_that_do_not_validate(trainer_factory) -> None:
    bar = RecordingBar()
    trainer = trainer_factory(callbacks=[bar], enable_progress_bar=None, max_epochs=2, check_val_every_n_epoch=2)
    trainer.fit(ShowsLoss())
    assert bar.seen["val_this_epoch"] == [0, 4]


def test_unbounded_epochs_show_the_steps_left_as_the_training_total(trainer_factory) -> None:
    bar = RecordingBar()
    trainer = trainer_factory(callbacks=[bar], enable_progress_bar=None, max_epochs=-1, max_steps=11)
    trainer.fit(ShowsLoss())
    assert bar.seen["train"] == [8, 3]


def test_a_dataloader_without_length_has_an_infinite_total(trainer_factory) -> None:
    class ThreeBatches(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter([(torch.zeros(4, 32), torch.zeros(4, 2))] * 3)

    bar = RecordingBar()
    trainer = trainer_factory(callbacks=[bar], enable_progress_bar=None)
    trainer.predict(ShowsLoss(), dataloaders=torch.utils.data.DataLoader(ThreeBatches(), batch_size=None))
    assert bar.seen["predict"] == [math.inf] * 3


def test_get_metrics_shows_prog_bar_metrics_and_the_logger_version(trainer_factory, tmp_path) -> None:
    bar = RecordingBar()
    logger = CSVLogger(tmp_path, version=12)
    trainer_factory(callbacks=[bar], enable_progress_bar=None, max_epochs=1, logger=logger).fit(ShowsLoss())
    metrics = bar.seen["metrics"][-1]
    assert list(metrics) == ["v_num", "loss"]
    assert metrics["v_num"] == 12 and isinstance(metrics["loss"], float)


def test_get_metrics_without_a_logger_has_no_version(trainer_factory) -> None:
    bar = RecordingBar()
    trainer_factory(callbacks=[bar], enable_progress_bar=None, max_epochs=1).fit(ShowsLoss())
    assert list(bar.seen["metrics"][0]) == ["loss"]


def test_a_string_version_shows_its_last_four_characters_and_several_loggers_are_joined(
    trainer_factory, tmp_path
) -> None:
    bar = RecordingBar()
    logger = CSVLogger(tmp_path, version="experiment-2024")
    trainer_factory(callbacks=[bar], enable_progress_bar=None, max_epochs=1, logger=logger).fit(ShowsLoss())
    assert bar.seen["metrics"][0]["v_num"] == "2024"
    bar = RecordingBar()
    loggers = [CSVLogger(tmp_path, name=name, version=version) for name, version in (("a", 1), ("b", 2), ("c", 1))]
    trainer_factory(callbacks=[bar], enable_progress_bar=None, max_epochs=1, logger=loggers).fit(ShowsLoss())
    assert bar.seen["metrics"][0]["v_num"] == "1_2"


def test_logging_v_num_to_the_bar_replaces_the_version_with_a_warning(trainer_factory, tmp_path) -> None:
    class LogsVNum(ShowsLoss):
        def training_step(self, batch, batch_idx):
            self.log("v_num", 5.0, prog_bar=True)
            return super().training_step(batch, batch_idx)

    bar = RecordingBar()
    trainer = trainer_factory(callbacks=[bar], enable_progress_bar=None, max_epochs=1, logger=CSVLogger(tmp_path))
    with pytest.warns(EmberWarning, match="v_num") as warned:
        trainer.fit(LogsVNum())
    assert len(warned) == 1
    assert bar.seen["metrics"][-1]["v_num"] == 5.0


def test_the_base_class_asks_subclasses_for_enable_and_disable() -> None:
    with pytest.raises(NotImplementedError, match="disable"):
        ProgressBar().disable()
    with pytest.raises(NotImplementedError, match="enable"):
        ProgressBar().enable()
    with pytest.raises(TypeError, match="setup"):
        ProgressBar().trainer  # noqa: B018


def test_two_progress_bars_are_refused_naming_both() -> None:
    with pytest.raises(MisconfigurationError, match=r"TQDMProgressBar, RichProgressBar.*only one progress bar"):
        ember.Trainer(callbacks=[TQDMProgressBar(), RichProgressBar()], logger=False)


def test_a_model_adding_a_second_progress_bar_is_refused(trainer_factory) -> None:
    class BringsItsOwnBar(ShowsLoss):
        def configure_callbacks(self):
            return [RichProgressBar()]

    trainer = trainer_factory(callbacks=[TQDMProgressBar()], enable_progress_bar=None)
    with pytest.raises(MisconfigurationError, match="TQDMProgressBar, RichProgressBar"):
        trainer.fit(BringsItsOwnBar())


def test_the_default_trainer_has_a_tqdm_bar_that_a_users_bar_replaces(tmp_path) -> None:
    assert type(ember.Trainer(logger=False).progress_bar_callback) is TQDMProgressBar
    rich = RichProgressBar()
    trainer = ember.Trainer(callbacks=[rich], logger=False)
    assert trainer.progress_bar_callback is rich
    assert [c for c in trainer.callbacks if isinstance(c, ProgressBar)] == [rich]
    custom = RecordingBar()
    assert ember.Trainer(callbacks=[custom], logger=False).progress_bar_callback is custom


def test_enable_progress_bar_false_removes_the_bar_and_refuses_a_given_one() -> None:
    assert ember.Trainer(enable_progress_bar=False, logger=False).progress_bar_callback is None
    with pytest.raises(MisconfigurationError, match="enable_progress_bar"):
        ember.Trainer(enable_progress_bar=False, callbacks=[TQDMProgressBar()], logger=False)
