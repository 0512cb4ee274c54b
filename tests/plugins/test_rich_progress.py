"""RichProgressBar: the bars rich leaves after real runs, and its refresh thread's lifetime."""

from __future__ import annotations

import sys
import threading

import pytest
import torch

import ember
from ember.callbacks import RichProgressBar
from ember.errors import MisconfigurationError
from ember.plugins.rich_progress import RichProgressBarTheme
from ember.testing import TinyModel

WIDE = {"width": 240}


class Model(TinyModel):
    """Shows train_loss, const and val_loss on the bar (log_dict reaches it as self.log does), not ``hidden``."""

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log_dict({"train_loss": loss, "const": 1.5}, prog_bar=True)
        self.log("hidden", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log_dict({"val_loss": self._loss(batch)}, prog_bar=True)

    def test_step(self, batch, batch_idx, dataloader_idx=0):
        return None


def fit_output(trainer_factory, capsys, bar=None, model=None, **flags) -> str:
    trainer = trainer_factory(
        callbacks=[bar or RichProgressBar(console_kwargs=WIDE)], enable_progress_bar=None, **flags
    )
    trainer.fit(model or Model())
    return capsys.readouterr().out


def refresher_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "ember-rich-progress"]


def test_fit_leaves_the_training_bar_with_epoch_count_and_prog_bar_metrics(trainer_factory, capsys) -> None:
    lines = fit_output(trainer_factory, capsys, max_epochs=2).splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("Epoch 1/1  ") and " 8/8 " in line and "it/s" in line
    metrics = line.split("it/s ", 1)[1]
    assert [item.split(":")[0] for item in metrics.split()[::2]] == ["train_loss", "const", "val_loss"]
    assert "const: 1.500" in metrics and "hidden" not in line


def test_sanity_check_and_validation_bars_are_hidden_once_done_in_fit(trainer_factory, capsys) -> None:
    output = fit_output(trainer_factory, capsys, max_epochs=1)
    assert "Sanity Checking" not in output and "Validation" not in output


def test_validate_test_and_predict_leave_their_bar(trainer_factory, capsys) -> None:
    trainer = trainer_factory(callbacks=[RichProgressBar(console_kwargs=WIDE)], enable_progress_bar=None)
    model = Model()
    for run, description in ((trainer.validate, "Validation"), (trainer.test, "Testing")):
        run(model, verbose=False)
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 1 and lines[0].startswith(description + " ") and " 4/4 " in lines[0]
    trainer.predict(model)
    assert capsys.readouterr().out.startswith("Predicting ")


def test_each_test_dataloader_replaces_the_previous_bar(trainer_factory, capsys) -> None:
    model = Model()
    loaders = [model.test_dataloader(), torch.utils.data.DataLoader(model._data.test_dataloader().dataset, 16)]
    trainer = trainer_factory(callbacks=[RichProgressBar(console_kwargs=WIDE)], enable_progress_bar=None)
    trainer.test(model, dataloaders=loaders, verbose=False)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and " 2/2 " in lines[0]


def test_a_dataloader_without_length_shows_dashes_for_its_total(trainer_factory, capsys) -> None:
    class ThreeBatches(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter([(torch.zeros(4, 32), torch.zeros(4, 2))] * 3)

    trainer = trainer_factory(callbacks=[RichProgressBar(console_kwargs=WIDE)], enable_progress_bar=None)
    trainer.predict(Model(), dataloaders=torch.utils.data.DataLoader(ThreeBatches(), batch_size=None))
    assert " 3/-- " in capsys.readouterr().out


def test_leave_keeps_each_epochs_bar(trainer_factory, capsys) -> None:
    bar = RichProgressBar(leave=True, console_kwargs=WIDE)
    lines = fit_output(trainer_factory, capsys, bar=bar, max_epochs=3).splitlines()
    assert [line.split("  ")[0] for line in lines] == ["Epoch 0/2", "Epoch 1/2", "Epoch 2/2"]
    assert all(" 8/8 " in line for line in lines)


def test_theme_sets_the_metric_format(trainer_factory, capsys) -> None:
    theme = RichProgressBarTheme(metrics_format=".1f", metrics_text_delimiter=" | ")
    bar = RichProgressBar(theme=theme, console_kwargs=WIDE)
    output = fit_output(trainer_factory, capsys, bar=bar, max_epochs=1, limit_val_batches=0)
    assert "const: 1.5" in output and " | " in output


def test_no_output_when_refresh_rate_is_0_or_the_bar_is_disabled(trainer_factory, capsys) -> None:
    assert fit_output(trainer_factory, capsys, bar=RichProgressBar(refresh_rate=0), max_epochs=1) == ""
    bar = RichProgressBar()
    bar.disable()
    assert fit_output(trainer_factory, capsys, bar=bar, max_epochs=1) == ""
    assert refresher_threads() == []


def test_a_terminal_gets_a_refresh_thread_that_stops_when_fit_ends(trainer_factory, capsys) -> None:
    seen: list[int] = []

    class Watch(ember.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append(len(refresher_threads()))

    bar = RichProgressBar(refresh_rate=50, console_kwargs={"force_terminal": True, **WIDE})
    trainer = trainer_factory(callbacks=[bar, Watch()], enable_progress_bar=None, max_epochs=1)
    trainer.fit(Model())
    assert set(seen) == {1}
    assert refresher_threads() == []
    assert "Epoch 0/0" in capsys.readouterr().out


def test_a_failing_run_stops_the_thread_and_gives_stdout_back(trainer_factory, capsys) -> None:
    class Fails(Model):
        def training_step(self, batch, batch_idx):
            if batch_idx == 3:
                raise RuntimeError("boom")
            return super().training_step(batch, batch_idx)

    stdout = sys.stdout
    bar = RichProgressBar(console_kwargs={"force_terminal": True, **WIDE})
    with pytest.raises(RuntimeError, match="boom"):
        trainer_factory(callbacks=[bar], enable_progress_bar=None).fit(Fails())
    assert refresher_threads() == []
    assert sys.stdout is stdout
    assert bar.progress is None


def test_print_goes_above_the_bars(trainer_factory, capsys) -> None:
    class Announce(ember.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            trainer.progress_bar_callback.print(f"epoch {trainer.current_epoch} done")

    bar = RichProgressBar(console_kwargs=WIDE)
    trainer = trainer_factory(callbacks=[bar, Announce()], enable_progress_bar=None, max_epochs=2)
    trainer.fit(Model())
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["epoch 0 done", "epoch 1 done"] and lines[2].startswith("Epoch 1/1")


@pytest.mark.parametrize("rate", [-1, "10", True])
def test_refresh_rate_must_be_a_number_of_refreshes_per_second(rate) -> None:
    with pytest.raises(MisconfigurationError, match="refresh_rate"):
        RichProgressBar(refresh_rate=rate)
