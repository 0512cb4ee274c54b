"""Trainer(profiler="plugins"): per plugin and hook, calls, time and share of training."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest

import ember
from ember.core.profiler import PluginProfiler
from ember.errors import MisconfigurationError
from ember.loggers import Logger


class Slow(ember.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        time.sleep(0.002)


class Keeps(Logger):
    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}

    @property
    def name(self) -> str:
        return "keeps"

    @property
    def version(self) -> int:
        return 0

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.metrics.update(metrics)

    def log_hyperparams(self, params: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:
        pass


def test_the_profile_counts_every_call_of_every_plugin(trainer_factory, tiny_model, capsys) -> None:
    logger = Keeps()
    trainer = trainer_factory(profiler="plugins", callbacks=[Slow()], logger=logger, max_epochs=2)
    trainer.fit(tiny_model)
    timing = trainer.profiler.timings[("Slow", "on_train_batch_end")]
    assert timing.calls == 16 and timing.seconds >= 16 * 0.002
    assert trainer.profiler.training_seconds > timing.seconds
    printed = capsys.readouterr().out
    assert "Plugin profile" in printed and "Slow" in printed and "on_train_batch_end" in printed
    assert logger.metrics["profile/Slow/on_train_batch_end_s"] == pytest.approx(timing.seconds)
    assert 0 < logger.metrics["profile/Slow/share"] < 1


def test_a_profiler_instance_may_be_passed_and_read_after_fit(trainer_factory, tiny_model) -> None:
    profiler = PluginProfiler()
    trainer_factory(profiler=profiler, callbacks=[Slow()], max_epochs=1).fit(tiny_model)
    assert profiler.per_plugin()["Slow"] >= 8 * 0.002


def test_without_the_profiler_nothing_is_wrapped(trainer_factory, tiny_model) -> None:
    callback = Slow()
    trainer = trainer_factory(callbacks=[callback], max_epochs=1, limit_train_batches=1)
    trainer.fit(tiny_model)
    (impl,) = trainer.plugin_manager.hook.on_train_batch_end.get_hookimpls()
    assert impl.function == callback.on_train_batch_end


def test_an_unknown_profiler_is_a_clear_error() -> None:
    with pytest.raises(MisconfigurationError, match="profiler='simple'.*'plugins'"):
        ember.Trainer(profiler="simple")
