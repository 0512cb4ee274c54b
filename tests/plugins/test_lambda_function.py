"""LambdaCallback: each function given runs as its hook, with the hook's arguments, and nothing else runs."""

from __future__ import annotations

import inspect

import pytest

from ember.callbacks import LambdaCallback
from ember.core.pluginmanager import HOOK_NAMES
from ember.errors import MisconfigurationError
from ember.testing import HookRecorder, TinyModel

#: Every hook but the state hooks, which are methods a stateful callback defines, as in Lightning.
LAMBDA_HOOKS = sorted(HOOK_NAMES - {"state_dict", "load_state_dict"})


def recording_lambdas(calls: list[str]) -> LambdaCallback:
    def record(name):
        return lambda *args: calls.append(name)

    return LambdaCallback(**{name: record(name) for name in LAMBDA_HOOKS})


def test_takes_every_hook_as_a_keyword() -> None:
    assert sorted(inspect.signature(LambdaCallback).parameters) == LAMBDA_HOOKS
    assert len(LAMBDA_HOOKS) == 37


def test_runs_like_a_callback_that_overrides_every_hook(trainer_factory, tmp_path) -> None:
    """The same hooks in the same order as HookRecorder, a Callback subclass, through fit, validate, test, predict."""
    calls: list[str] = []
    recorder = HookRecorder()
    trainer = trainer_factory(
        max_epochs=1, limit_train_batches=2, limit_val_batches=1, callbacks=[recording_lambdas(calls), recorder]
    )
    model = TinyModel()
    trainer.fit(model)
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    trainer.validate(model, verbose=False)
    trainer.test(model, verbose=False)
    trainer.predict(model)
    assert calls == [name for name in recorder.calls if name not in ("state_dict", "load_state_dict")]
    assert len(calls) > 50


def test_every_hook_is_reachable(trainer_factory, tmp_path) -> None:
    calls: list[str] = []
    trainer = trainer_factory(max_epochs=1, limit_train_batches=2, callbacks=[recording_lambdas(calls)])
    model = TinyModel()
    trainer.fit(model)
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    trainer.test(model, verbose=False)
    trainer.predict(model)
    resumed = trainer_factory(max_epochs=2, limit_train_batches=2, callbacks=[recording_lambdas(calls)])
    resumed.fit(TinyModel(), ckpt_path=tmp_path / "a.ckpt")

    class Broken(TinyModel):
        def training_step(self, batch, batch_idx):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        trainer_factory(callbacks=[recording_lambdas(calls)]).fit(Broken())
    assert sorted(set(calls)) == LAMBDA_HOOKS


def test_functions_get_the_hooks_arguments_positionally(trainer_factory) -> None:
    seen = []
    callback = LambdaCallback(
        on_train_batch_end=lambda trainer, module, outputs, batch, batch_idx: seen.append(
            (trainer.global_step, type(module).__name__, float(outputs["loss"]), len(batch[0]), batch_idx)
        )
    )
    trainer_factory(max_epochs=1, limit_train_batches=3, callbacks=[callback]).fit(TinyModel())
    assert [(step, name, size, idx) for step, name, _, size, idx in seen] == [
        (1, "TinyModel", 8, 0),
        (2, "TinyModel", 8, 1),
        (3, "TinyModel", 8, 2),
    ]
    assert all(loss > 0 for _, _, loss, _, _ in seen)


def test_only_the_given_hooks_are_registered(trainer_factory) -> None:
    callback = LambdaCallback(on_fit_start=lambda *args: None)
    trainer = trainer_factory(callbacks=[callback])
    hooks = {
        name
        for name in HOOK_NAMES
        for _, plugin, _ in trainer.plugin_manager.implementations(name)
        if plugin is callback
    }
    assert hooks == {"on_fit_start"}


def test_a_function_may_steer_training(trainer_factory) -> None:
    stop = LambdaCallback(on_train_batch_end=lambda trainer, *_: setattr(trainer, "should_stop", True))
    trainer = trainer_factory(max_epochs=5, callbacks=[stop])
    trainer.fit(TinyModel())
    assert trainer.global_step == 1
    assert trainer.current_epoch == 1


def test_a_value_that_is_not_callable_is_an_error_naming_it() -> None:
    with pytest.raises(MisconfigurationError, match=r"LambdaCallback\(on_fit_start='print'\)"):
        LambdaCallback(on_fit_start="print")
