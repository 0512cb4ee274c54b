"""A RichProgressBar among the callbacks makes the default model summary a RichModelSummary, as in Lightning."""

from __future__ import annotations

from ember.callbacks import ModelSummary, RichModelSummary, RichProgressBar, TQDMProgressBar


def summaries(trainer):
    return [type(c) for c in trainer.callbacks if isinstance(c, ModelSummary)]


def test_a_rich_progress_bar_brings_a_rich_model_summary(trainer_factory) -> None:
    trainer = trainer_factory(callbacks=[RichProgressBar()], enable_model_summary=True)
    assert summaries(trainer) == [RichModelSummary]


def test_other_progress_bars_keep_the_plain_model_summary(trainer_factory) -> None:
    trainer = trainer_factory(callbacks=[TQDMProgressBar()], enable_model_summary=True)
    assert summaries(trainer) == [ModelSummary]


def test_a_model_summary_the_user_passes_is_kept(trainer_factory) -> None:
    trainer = trainer_factory(callbacks=[RichProgressBar(), ModelSummary(max_depth=2)])
    assert summaries(trainer) == [ModelSummary]


def test_the_rich_summary_is_printed_by_fit(trainer_factory, tiny_model, capsys) -> None:
    trainer = trainer_factory(callbacks=[RichProgressBar()], enable_model_summary=True, max_epochs=1)
    trainer.fit(tiny_model)
    assert "Total params" in capsys.readouterr().out
