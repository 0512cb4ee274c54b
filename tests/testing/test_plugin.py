"""ember.testing, the pytest plugin for callback authors: fixtures, tiny model and data, hook recorder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

import ember
import ember.testing
from ember.callback import Checkpoint
from ember.testing import HookRecorder, TinyDataModule, TinyModel, make_trainer, recording_module


def test_the_plugin_is_registered_through_its_pytest11_entry_point(pytestconfig: pytest.Config) -> None:
    import ember.testing.plugin

    assert pytestconfig.pluginmanager.get_plugin("ember") is ember.testing.plugin


def test_trainer_factory_has_fast_defaults_in_a_temporary_folder(trainer_factory: Any, tmp_path: Path) -> None:
    trainer = trainer_factory()
    assert trainer.max_epochs == 2 and trainer.loggers == []
    assert trainer.default_root_dir == str(tmp_path)
    assert not {"model_checkpoint", "progress_bar", "model_summary"} & {
        n for n, _ in trainer.plugin_manager.list_name_plugin()
    }


def test_trainer_factory_keywords_override_the_defaults(trainer_factory: Any) -> None:
    trainer = trainer_factory(max_epochs=5, enable_progress_bar=True)
    assert trainer.max_epochs == 5
    assert "progress_bar" in {name for name, _ in trainer.plugin_manager.list_name_plugin()}


def test_a_checkpoint_callback_passed_to_trainer_factory_is_used(trainer_factory: Any) -> None:
    class Saver(Checkpoint):
        pass

    saver = Saver()
    assert trainer_factory(callbacks=[saver]).callbacks == [saver]


def test_tiny_model_trains_on_its_own_data(trainer_factory: Any, tiny_model: TinyModel) -> None:
    trainer = trainer_factory(max_epochs=1)
    trainer.fit(tiny_model)
    assert trainer.global_step == 8
    assert {"train_loss", "val_loss"} <= set(trainer.callback_metrics)


def test_tiny_datamodule_serves_every_stage(trainer_factory: Any, tiny_datamodule: TinyDataModule) -> None:
    predictions = trainer_factory().predict(TinyModel(), datamodule=tiny_datamodule)
    assert len(predictions) == 4 and tuple(predictions[0].shape) == (8, 2)


def test_hook_recorder_asserts_a_call_sequence(trainer_factory: Any, tiny_model: TinyModel, hook_recorder: Any) -> None:
    trainer_factory(callbacks=[hook_recorder], max_epochs=1, limit_train_batches=2, limit_val_batches=0).fit(tiny_model)
    hook_recorder.assert_sequence(
        ["on_fit_start", "on_train_start", "on_train_end", "on_fit_end"],
        hooks=["on_fit_start", "on_train_start", "on_train_end", "on_fit_end"],
    )
    hook_recorder.assert_sequence(["on_train_batch_end"] * 2, hooks=["on_train_batch_end"])


def test_hook_recorder_names_the_first_difference() -> None:
    recorder = HookRecorder(calls=["setup", "on_fit_start"])
    with pytest.raises(AssertionError, match="call 1: got 'on_fit_start', expected 'on_train_start'"):
        recorder.assert_sequence(["setup", "on_train_start"])
    with pytest.raises(AssertionError, match="got 2 calls, expected 1"):
        recorder.assert_sequence(["setup"])


def test_recording_module_interleaves_model_and_callback_calls(tmp_path: Path) -> None:
    calls: list[str] = []
    model = recording_module(TinyModel, calls)()
    make_trainer(
        tmp_path, callbacks=[HookRecorder("cb.", calls)], max_epochs=1, limit_train_batches=1, limit_val_batches=0
    ).fit(model)
    start = calls.index("cb.on_train_start")
    assert calls[start : start + 2] == ["cb.on_train_start", "m.on_train_start"]
    assert "m.training_step" in calls


def test_public_names_match_all() -> None:
    assert sorted(ember.testing.__all__) == ember.testing.__all__
    for name in ember.testing.__all__:
        assert getattr(ember.testing, name) is not None
    assert set(ember.testing.__all__) <= set(dir(ember.testing))


def test_importing_the_plugin_imports_no_torch() -> None:
    code = "import sys, ember.testing, ember.testing.plugin; print(sorted(m for m in sys.modules if m == 'torch'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stderr


def test_a_plugin_authors_test_file_gets_the_fixtures(tmp_path: Path) -> None:
    (tmp_path / "test_author.py").write_text(
        dedent(
            """
            import ember

            class Counter(ember.Callback):
                def __init__(self):
                    self.batches = 0

                def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                    self.batches += 1

            def test_counter(trainer_factory, tiny_model, hook_recorder):
                counter = Counter()
                trainer_factory(callbacks=[counter, hook_recorder], max_epochs=1, limit_train_batches=3).fit(tiny_model)
                assert counter.batches == 3
                hook_recorder.assert_sequence(["on_train_batch_end"] * 3, hooks=["on_train_batch_end"])
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert "1 passed" in result.stdout, result.stdout[-3000:]
    assert ember.__version__


def test_trainer_factory_turns_third_party_autoloading_off(trainer_factory) -> None:
    trainer_factory()
    assert os.environ["EMBER_DISABLE_PLUGIN_AUTOLOAD"] == "1" and "EMBER_PLUGINS" not in os.environ


@pytest.mark.ember_plugins("timer", "lr_monitor")
def test_a_test_asks_for_installed_plugins_by_name(trainer_factory) -> None:
    from ember.callbacks import LearningRateMonitor, Timer

    trainer = trainer_factory()
    assert {Timer, LearningRateMonitor} <= {type(c) for c in trainer.callbacks}
