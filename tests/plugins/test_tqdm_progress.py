"""TQDMProgressBar: what a terminal shows after real runs, read back from the captured output."""

from __future__ import annotations

import re

import pytest
import torch

import ember
from ember.callbacks import TQDMProgressBar
from ember.errors import MisconfigurationError
from ember.testing import TinyModel


class ShownMetrics(TinyModel):
    """Logs train_loss and val_loss to the bar, and ``hidden`` only to the loggers."""

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True, on_epoch=True)
        self.log("hidden", loss)
        self.log("const", 1.5, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch), prog_bar=True)

    def test_step(self, batch, batch_idx, dataloader_idx=0):
        self.log("test_loss", self._loss(batch), prog_bar=True)


def screen(output: str) -> list[str]:
    """The lines a terminal shows after printing ``output``: tqdm's ``\\r``, ``\\n`` and cursor-up moves applied."""
    rows: list[list[str]] = [[]]
    row = column = 0
    for token in re.findall(r"\x1b\[A|\r|\n|[^\r\n\x1b]+", output):
        if token == "\x1b[A":
            row = max(row - 1, 0)
        elif token == "\r":
            column = 0
        elif token == "\n":
            row, column = row + 1, 0
        else:
            while len(rows) <= row:
                rows.append([])
            line = rows[row]
            line.extend(" " * (column - len(line)))
            line[column : column + len(token)] = token
            column += len(token)
    return [text for text in ("".join(line).rstrip() for line in rows) if text]


def run(trainer_factory, capsys, bar=None, stage="fit", model=None, **flags):
    trainer = trainer_factory(callbacks=[bar or TQDMProgressBar()], enable_progress_bar=None, **flags)
    model = model or ShownMetrics()
    getattr(trainer, stage)(model)
    return capsys.readouterr().out


def test_fit_shows_sanity_check_epochs_and_validation_with_lightning_descriptions(trainer_factory, capsys) -> None:
    output = run(trainer_factory, capsys, max_epochs=2)
    assert "Sanity Checking DataLoader 0:" in output and "2/2" in output
    assert "Epoch 0: 100%" in output and "Epoch 1: 100%" in output
    assert "Validation DataLoader 0: 100%" in output and "4/4" in output


def test_the_finished_fit_leaves_one_line_with_the_last_epoch_and_its_metrics(trainer_factory, capsys) -> None:
    lines = screen(run(trainer_factory, capsys, max_epochs=2))
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("Epoch 1: 100%|") and "| 8/8 [" in line
    metrics = line.split("it/s, ", 1)[1].rstrip("]")
    names = [item.split("=")[0] for item in metrics.split(", ")]
    assert names == ["train_loss_step", "const", "val_loss", "train_loss_epoch"]


def test_only_prog_bar_metrics_are_shown(trainer_factory, capsys) -> None:
    output = run(trainer_factory, capsys, max_epochs=1)
    assert "train_loss_step=" in output and "val_loss=" in output
    assert "hidden" not in output


def test_metric_values_have_three_significant_digits_padded_to_five_characters(trainer_factory, capsys) -> None:
    output = run(trainer_factory, capsys, max_epochs=1)
    assert "const=1.500" in output
    for value in re.findall(r"train_loss_step=([^,\]]+)", output):
        assert len(value) >= 5 and float(value) > 0


def test_v_num_shows_the_logger_version(trainer_factory, capsys, tmp_path) -> None:
    output = run(trainer_factory, capsys, max_epochs=1, logger=ember.loggers.CSVLogger(tmp_path, version=7))
    assert screen(output)[0].split("it/s, ", 1)[1].startswith("v_num=7, ")


def test_test_validate_and_predict_each_show_their_own_bar(trainer_factory, capsys) -> None:
    trainer = trainer_factory(callbacks=[TQDMProgressBar()], enable_progress_bar=None)
    model = ShownMetrics()
    trainer.test(model, verbose=False)
    assert screen(capsys.readouterr().out)[0].startswith("Testing DataLoader 0: 100%|")
    trainer.validate(model, verbose=False)
    assert screen(capsys.readouterr().out)[0].startswith("Validation DataLoader 0: 100%|")
    trainer.predict(model)
    lines = screen(capsys.readouterr().out)
    assert len(lines) == 1 and lines[0].startswith("Predicting DataLoader 0: 100%|") and "| 4/4 [" in lines[0]


def test_each_dataloader_gets_its_own_description_and_total(trainer_factory, capsys) -> None:
    model = ShownMetrics()
    loaders = [model.test_dataloader(), torch.utils.data.DataLoader(model._data.test_dataloader().dataset, 16)]
    trainer = trainer_factory(callbacks=[TQDMProgressBar()], enable_progress_bar=None)
    trainer.test(model, dataloaders=loaders, verbose=False)
    output = capsys.readouterr().out
    assert "Testing DataLoader 0: 100%" in output and "Testing DataLoader 1: 100%" in output
    assert screen(output)[0].startswith("Testing DataLoader 1: 100%|") and "| 2/2 [" in screen(output)[0]


def test_leave_keeps_one_finished_line_per_epoch(trainer_factory, capsys) -> None:
    lines = screen(run(trainer_factory, capsys, bar=TQDMProgressBar(leave=True), max_epochs=3))
    assert [line.split(":")[0] for line in lines] == ["Epoch 0", "Epoch 1", "Epoch 2"]
    assert all("| 8/8 [" in line and "train_loss_epoch=" in line for line in lines)


def test_refresh_rate_in_batches_still_ends_on_the_last_batch(trainer_factory, capsys) -> None:
    bar = TQDMProgressBar(refresh_rate=3)
    lines = screen(run(trainer_factory, capsys, bar=bar, max_epochs=1, limit_train_batches=7))
    assert bar.refresh_rate == 3
    assert "| 7/7 [" in lines[0]


def test_tqdm_miniters_in_the_environment_raises_the_refresh_rate(monkeypatch) -> None:
    monkeypatch.setenv("TQDM_MINITERS", "5")
    assert TQDMProgressBar(refresh_rate=1).refresh_rate == 5
    assert TQDMProgressBar(refresh_rate=9).refresh_rate == 9


@pytest.mark.parametrize(
    "make",
    [
        lambda factory: factory(callbacks=[TQDMProgressBar(refresh_rate=0)], enable_progress_bar=None),
        lambda factory: factory(enable_progress_bar=False),
    ],
    ids=["refresh_rate=0", "enable_progress_bar=False"],
)
def test_no_output_at_all_when_off(trainer_factory, capsys, make) -> None:
    trainer = make(trainer_factory)
    model = ShownMetrics()
    trainer.fit(model)
    trainer.test(model, verbose=False)
    trainer.predict(model)
    assert capsys.readouterr().out == ""


def test_no_output_after_disable_and_output_again_after_enable(trainer_factory, capsys) -> None:
    bar = TQDMProgressBar()
    bar.disable()
    trainer = trainer_factory(callbacks=[bar], enable_progress_bar=None)
    trainer.fit(ShownMetrics())
    assert capsys.readouterr().out == "" and bar.is_disabled
    bar.enable()
    trainer.test(ShownMetrics(), verbose=False)
    assert "Testing DataLoader 0: 100%" in capsys.readouterr().out


def test_print_writes_a_line_above_the_bar(trainer_factory, capsys) -> None:
    class Announce(ember.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            trainer.progress_bar_callback.print("epoch", trainer.current_epoch, "done")

    trainer = trainer_factory(callbacks=[TQDMProgressBar(), Announce()], enable_progress_bar=None, max_epochs=2)
    trainer.fit(ShownMetrics())
    lines = screen(capsys.readouterr().out)
    assert lines[:2] == ["epoch 0 done", "epoch 1 done"]
    assert lines[2].startswith("Epoch 1: 100%|")


def test_process_position_draws_the_bars_lower(trainer_factory, capsys) -> None:
    assert "\n\n\rEpoch 0:" in run(trainer_factory, capsys, bar=TQDMProgressBar(process_position=1), max_epochs=1)
    assert "\n\n\rEpoch 0:" not in run(trainer_factory, capsys, bar=TQDMProgressBar(), max_epochs=1)


def test_a_failing_run_closes_its_bars_so_the_traceback_starts_on_a_new_line(trainer_factory, capsys) -> None:
    class Fails(ShownMetrics):
        def training_step(self, batch, batch_idx):
            if batch_idx == 3:
                raise RuntimeError("boom")
            return super().training_step(batch, batch_idx)

    bar = TQDMProgressBar()
    with pytest.raises(RuntimeError, match="boom"):
        trainer_factory(callbacks=[bar], enable_progress_bar=None).fit(Fails())
    output = capsys.readouterr().out
    assert output.endswith("\n")
    assert screen(output)[-1].startswith("Epoch 0:  38%|") and "| 3/8 [" in screen(output)[-1]
    assert bar.train_progress_bar is None


def test_the_default_trainer_draws_a_tqdm_bar(tmp_path, capsys) -> None:
    trainer = ember.Trainer(
        max_epochs=1, default_root_dir=tmp_path, enable_checkpointing=False, enable_model_summary=False
    )
    assert isinstance(trainer.progress_bar_callback, TQDMProgressBar)
    trainer.fit(ShownMetrics())
    assert screen(capsys.readouterr().out)[0].startswith("Epoch 0: 100%|")


@pytest.mark.parametrize("rate", [-1, 1.5, "1"])
def test_refresh_rate_must_be_a_whole_number_of_batches(rate) -> None:
    with pytest.raises(MisconfigurationError, match="refresh_rate"):
        TQDMProgressBar(refresh_rate=rate)


def test_a_run_resumed_mid_epoch_counts_on_from_where_it_stopped(trainer_factory, capsys, tmp_path) -> None:
    class SaveAtBatch3(ember.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx == 2:
                trainer.save_checkpoint(tmp_path / "mid.ckpt")
                raise KeyboardInterrupt

    with pytest.raises(SystemExit):
        trainer_factory(callbacks=[SaveAtBatch3()], max_epochs=1).fit(ShownMetrics())
    capsys.readouterr()
    trainer = trainer_factory(callbacks=[TQDMProgressBar()], enable_progress_bar=None, max_epochs=1)
    trainer.fit(ShownMetrics(), ckpt_path=tmp_path / "mid.ckpt")
    output = capsys.readouterr().out
    assert "Epoch 0:  25%|" in output and "| 2/8 [" in output
    assert screen(output)[0].startswith("Epoch 0: 100%|")
