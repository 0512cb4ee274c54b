"""What ``Trainer(callbacks=...)`` and ``Trainer(logger=...)`` accept: real plugins, mocks made with spec=, duck-typed loggers."""

from __future__ import annotations

import re
import types
from unittest import mock

import pytest

import ember
from ember.callbacks import ModelCheckpoint
from ember.errors import MisconfigurationError
from ember.loggers import Logger


@pytest.mark.parametrize(
    ("item", "named"),
    [
        ("ModelCheckpoint", "'ModelCheckpoint'"),
        (3, "3 (int)"),
        (None, "None (NoneType)"),
        (object(), "object"),
        (types.ModuleType("no_hooks_here"), "no_hooks_here"),
    ],
)
def test_an_item_without_hooks_is_an_error_naming_it(trainer_factory, item, named) -> None:
    with pytest.raises(
        MisconfigurationError, match=r"callbacks\[1\] is .*" + re.escape(named) + r".*accepted are Callback"
    ):
        trainer_factory(callbacks=[ember.Callback(), item])


def test_a_callback_class_instead_of_an_instance_is_an_error(trainer_factory) -> None:
    with pytest.raises(
        MisconfigurationError, match=r"callbacks\[0\] is the class ModelCheckpoint.*ModelCheckpoint\(\.\.\.\)"
    ):
        trainer_factory(callbacks=[ModelCheckpoint])


def test_an_object_with_hookimpls_is_accepted(trainer_factory, tiny_model) -> None:
    class Plugin:
        ends = 0

        @ember.hookimpl
        def on_train_end(self, trainer):
            self.ends += 1

    plugin = Plugin()
    trainer_factory(callbacks=[plugin], max_epochs=1, limit_train_batches=1).fit(tiny_model)
    assert plugin.ends == 1


def test_a_mock_callback_made_with_spec_is_called_for_every_hook(trainer_factory, tiny_model) -> None:
    callback = mock.Mock(spec=ember.Callback)
    trainer = trainer_factory(callbacks=[callback], max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(tiny_model)
    callback.setup.assert_called_once_with(trainer, tiny_model, stage="fit")  # as Lightning calls it
    callback.on_fit_start.assert_called_once_with(trainer, tiny_model)
    assert callback.on_train_batch_end.call_count == 2
    callback.on_fit_end.assert_called_once_with(trainer, tiny_model)


def test_a_mock_of_a_checkpoint_callback_replaces_the_default_one(tmp_path, tiny_model) -> None:
    checkpoint = mock.MagicMock(spec=ModelCheckpoint)
    trainer = ember.Trainer(
        default_root_dir=tmp_path,
        callbacks=[checkpoint],
        max_epochs=1,
        limit_train_batches=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(tiny_model)
    assert trainer.checkpoint_callbacks == [checkpoint]
    checkpoint.on_train_epoch_end.assert_called_once_with(trainer, tiny_model)


def test_a_mock_logger_made_with_spec_receives_the_metrics(trainer_factory, tiny_model) -> None:
    logger = mock.Mock(spec=Logger)
    trainer_factory(logger=logger, max_epochs=1, limit_train_batches=2, log_every_n_steps=1).fit(tiny_model)
    assert logger.log_metrics.called
    logger.log_hyperparams.assert_called_once()
    logger.finalize.assert_called_once_with("success")


class PrintLogger:
    """Not a Logger subclass, but has Logger's methods."""

    name, version = "print", 0

    def __init__(self):
        self.metrics = []

    def log_metrics(self, metrics, step=None):
        self.metrics.append((step, dict(metrics)))

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_graph(self, model, input_array=None):
        pass

    def save(self):
        pass

    def finalize(self, status):
        self.status = status


def test_an_object_with_loggers_methods_is_a_logger(trainer_factory, tiny_model) -> None:
    logger = PrintLogger()
    trainer = trainer_factory(logger=logger, max_epochs=1, limit_train_batches=2, log_every_n_steps=1)
    trainer.fit(tiny_model)
    assert trainer.logger is logger
    assert [step for step, metrics in logger.metrics if "train_loss" in metrics] == [0, 1]
    assert logger.status == "success"


def test_a_logger_lacking_methods_is_an_error_naming_them(trainer_factory) -> None:
    class Partial:
        def log_metrics(self, metrics, step=None):
            pass

    with pytest.raises(MisconfigurationError, match="lacks Logger's log_hyperparams, log_graph, save, finalize"):
        trainer_factory(logger=Partial())
