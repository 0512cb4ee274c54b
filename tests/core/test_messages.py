"""Informational messages go through Python logging under the ``ember`` logger; users control their verbosity."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from ember.callbacks import EarlyStopping, ModelPruning
from ember.testing import TinyModel


def test_messages_are_records_of_the_ember_logger(trainer_factory, caplog) -> None:
    stopping = EarlyStopping("val_loss", patience=0, verbose=True, min_delta=100.0)
    trainer_factory(callbacks=[stopping, ModelPruning("l1_unstructured", amount=0.5, verbose=1)]).fit(TinyModel())
    names = {record.name for record in caplog.records}
    assert {"ember.plugins.early_stopping", "ember.plugins.pruning"} <= names
    assert all(record.levelno == logging.INFO for record in caplog.records if record.name.startswith("ember"))


def test_raising_the_ember_loggers_level_silences_them(trainer_factory, caplog) -> None:
    ember_logger = logging.getLogger("ember")
    level = ember_logger.level
    ember_logger.setLevel(logging.WARNING)
    try:
        trainer_factory(callbacks=[ModelPruning("l1_unstructured", amount=0.5, verbose=1)]).fit(TinyModel())
    finally:
        ember_logger.setLevel(level)
    assert not [record for record in caplog.records if record.name.startswith("ember")]


SCRIPT = textwrap.dedent(
    """
    import logging, sys
    import ember
    from ember.callbacks import ModelPruning
    from ember.testing import TinyModel

    if sys.argv[1] == "quiet":
        logging.getLogger("ember").setLevel(logging.WARNING)
    if sys.argv[1] == "configured":
        logging.basicConfig(stream=sys.stderr, format="LOG %(name)s %(message)s", level=logging.INFO)
    trainer = ember.Trainer(
        max_epochs=1, limit_train_batches=2, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
        callbacks=[ModelPruning("l1_unstructured", amount=0.5, verbose=1)],
    )
    trainer.fit(TinyModel())
    """
)


def run_script(mode: str, tmp_path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, cwd=tmp_path, check=True, timeout=120
    )


@pytest.mark.slow
def test_a_plain_script_shows_them_on_stdout(tmp_path) -> None:
    assert "Applied `L1Unstructured`. Pruned" in run_script("plain", tmp_path).stdout


@pytest.mark.slow
def test_a_script_can_silence_them(tmp_path) -> None:
    result = run_script("quiet", tmp_path)
    assert "Applied" not in result.stdout + result.stderr


@pytest.mark.slow
def test_a_configured_root_logger_receives_them_once(tmp_path) -> None:
    result = run_script("configured", tmp_path)
    assert "Applied" not in result.stdout
    assert result.stderr.count("LOG ember.plugins.pruning Applied `L1Unstructured`") == 1
