"""What happens when a run raises: on_exception once, loggers finalized as failed, the error re-raised."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

import ember
from ember.errors import MisconfigurationError
from ember.loggers import Logger
from ember.testing import HookRecorder, TinyModel


class RecordingLogger(Logger):
    def __init__(self) -> None:
        self.statuses: list[str] = []

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> int:
        return 0

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        pass

    def log_hyperparams(self, params: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:
        pass

    def finalize(self, status: str) -> None:
        self.statuses.append(status)


class Raises(TinyModel):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def training_step(self, batch, batch_idx):
        if batch_idx == 1:
            raise self.error
        return super().training_step(batch, batch_idx)


def test_every_callback_gets_on_exception_once_and_the_same_exception_propagates(trainer_factory) -> None:
    error = RuntimeError("broken step")
    recorders = [HookRecorder(record_args=True, name="a"), HookRecorder(record_args=True, name="b")]
    logger = RecordingLogger()
    trainer = trainer_factory(callbacks=recorders, logger=logger)
    with pytest.raises(RuntimeError) as raised:
        trainer.fit(Raises(error))
    assert raised.value is error
    for recorder in recorders:
        assert recorder.calls.count("on_exception") == 1
        assert recorder.calls[-1] == "on_exception"
        assert recorder.call_args[-1][1][2] is error
    assert logger.statuses == ["failed"]
    assert trainer.interrupted and trainer.state.status == "interrupted"


def test_a_successful_run_finalizes_loggers_with_success(trainer_factory, tiny_model) -> None:
    logger = RecordingLogger()
    trainer_factory(logger=logger, max_epochs=1).fit(tiny_model)
    assert logger.statuses == ["success"]


def test_keyboard_interrupt_ends_gracefully_with_exit_code_1(trainer_factory) -> None:
    recorder = HookRecorder()
    logger = RecordingLogger()
    threads_before = set(threading.enumerate())
    trainer = trainer_factory(callbacks=[recorder], logger=logger)
    with pytest.raises(SystemExit) as raised:
        trainer.fit(Raises(KeyboardInterrupt()))
    assert raised.value.code == 1
    assert trainer.interrupted
    assert recorder.calls[-1] == "on_exception"
    assert "on_train_end" not in recorder.calls and "teardown" not in recorder.calls
    assert logger.statuses == ["failed"]
    assert set(threading.enumerate()) <= threads_before


def test_an_error_in_validate_reaches_on_exception(trainer_factory) -> None:
    class BadValidation(TinyModel):
        def validation_step(self, batch, batch_idx):
            raise ValueError("bad validation")

    recorder = HookRecorder()
    with pytest.raises(ValueError, match="bad validation"):
        trainer_factory(callbacks=[recorder]).validate(BadValidation(), verbose=False)
    assert recorder.calls[-1] == "on_exception"
    assert recorder.calls.count("on_exception") == 1


def test_fit_without_training_step_is_a_clear_error(trainer_factory) -> None:
    class NoStep(ember.Module):
        def configure_optimizers(self):
            return None

    with pytest.raises(MisconfigurationError, match="training_step"):
        trainer_factory().fit(NoStep())


def test_a_trainer_can_fit_again_after_an_error(trainer_factory) -> None:
    trainer = trainer_factory(max_epochs=1)
    with pytest.raises(RuntimeError):
        trainer.fit(Raises(RuntimeError("first")))
    trainer.fit(TinyModel())
    assert trainer.state.status == "finished"
