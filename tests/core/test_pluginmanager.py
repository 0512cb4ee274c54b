"""Registration rules of ember's PluginManager, checked through real Trainer runs."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

import ember
from ember.core.pluginmanager import PluginManager
from ember.errors import PluginError


class OnlyTrainStart(ember.Callback):
    def on_train_start(self, trainer, pl_module):
        self.seen = (trainer, pl_module)


def test_a_callback_registers_only_the_hooks_it_overrides() -> None:
    manager = PluginManager()
    manager.register(OnlyTrainStart())
    assert set(manager.callers()) == {"on_train_start"}


def test_hooks_nobody_implements_are_not_called(trainer_factory, tiny_model) -> None:
    trainer = trainer_factory(callbacks=[OnlyTrainStart()], max_epochs=1)
    trainer.fit(tiny_model)
    assert set(trainer._callers) == {"on_train_start"}


def test_lightning_style_callbacks_bind_positionally(trainer_factory, tiny_model) -> None:
    seen: dict[str, Any] = {}

    class Ported(ember.Callback):
        def on_train_start(self, trainer, model):  # "model" instead of "pl_module"
            seen["start"] = (trainer, model)

        def on_train_batch_end(self, *args, **kwargs):
            seen.setdefault("batch_end", args)

        def on_train_epoch_start(self, trainer, *rest):  # called as it is, every argument positional
            seen["epoch_start"] = (trainer, rest)

        def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
            seen.setdefault("val_batch_end", dataloader_idx)

    trainer = trainer_factory(callbacks=[Ported()], max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(tiny_model)
    assert seen["start"] == (trainer, tiny_model)
    assert len(seen["batch_end"]) == 5 and seen["batch_end"][0] is trainer and seen["batch_end"][4] == 0
    assert seen["val_batch_end"] == 0
    assert seen["epoch_start"] == (trainer, (tiny_model,))


def test_hookimpl_functions_take_any_subset_of_arguments(trainer_factory, tiny_model) -> None:
    plugin = types.ModuleType("subset_plugin")
    epochs: list[int] = []
    batches: list[int] = []

    @ember.hookimpl
    def on_train_epoch_end(trainer):
        epochs.append(trainer.current_epoch)

    @ember.hookimpl
    def on_train_batch_start(batch_idx):
        batches.append(batch_idx)

    plugin.on_train_epoch_end = on_train_epoch_end
    plugin.on_train_batch_start = on_train_batch_start
    trainer_factory(callbacks=[plugin], max_epochs=2, limit_train_batches=3).fit(tiny_model)
    assert epochs == [0, 1]
    assert batches == [0, 1, 2, 0, 1, 2]


def test_a_wrong_argument_name_is_rejected_naming_plugin_hook_and_argument(trainer_factory) -> None:
    class Typo:
        @ember.hookimpl
        def on_train_batch_end(self, trainer, batch_index):
            pass

    with pytest.raises(PluginError) as error:
        trainer_factory(callbacks=[Typo()])
    message = str(error.value)
    assert "'Typo'" in message and "'on_train_batch_end'" in message and "batch_index" in message
    assert "batch_idx" in message  # what would be accepted


def test_an_unknown_hook_is_rejected_with_a_suggestion(trainer_factory) -> None:
    class Misspelled:
        @ember.hookimpl
        def on_train_epoch_ned(self, trainer):
            pass

    with pytest.raises(PluginError, match="unknown hook 'on_train_epoch_ned'.*on_train_epoch_end"):
        trainer_factory(callbacks=[Misspelled()])


def test_a_callback_requiring_more_arguments_than_the_hook_passes_is_rejected(trainer_factory) -> None:
    class OldSignature(ember.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx):
            pass

    with pytest.raises(PluginError, match="on_train_batch_end.*requires 6 arguments"):
        trainer_factory(callbacks=[OldSignature()])


class Tracker(ember.Callback):
    def __init__(self, label: str, calls: list[str]) -> None:
        self.label, self.calls = label, calls

    def on_train_start(self, trainer, pl_module):
        self.calls.append(self.label)


def test_callbacks_run_in_list_order(trainer_factory, tiny_model) -> None:
    calls: list[str] = []
    callbacks = [Tracker(label, calls) for label in "abcde"]
    trainer_factory(callbacks=callbacks, max_epochs=1, limit_train_batches=1).fit(tiny_model)
    assert calls == list("abcde")


def test_tryfirst_trylast_and_wrappers_follow_pluggy(trainer_factory, tiny_model) -> None:
    calls: list[str] = []

    class Last(Tracker):
        @ember.hookimpl(trylast=True)
        def on_train_start(self, trainer, pl_module):
            calls.append(self.label)

    class LastToo(Last):
        def on_train_start(self, trainer, pl_module):  # inherits trylast from Last
            calls.append(self.label)

    class First:
        @ember.hookimpl(tryfirst=True)
        def on_train_start(self):
            calls.append("first")

    class Wrapper:
        @ember.hookimpl(wrapper=True)
        def on_train_start(self, trainer):
            calls.append("wrap-in")
            result = yield
            calls.append("wrap-out")
            return result

    plugins = [
        Last("last1", calls),
        Tracker("a", calls),
        Wrapper(),
        LastToo("last2", calls),
        Tracker("b", calls),
        First(),
    ]
    trainer_factory(callbacks=plugins, max_epochs=1, limit_train_batches=1).fit(tiny_model)
    assert calls == ["wrap-in", "first", "a", "b", "last1", "last2", "wrap-out"]


def test_instance_attributes_named_like_hooks_count_as_overrides(trainer_factory, tiny_model) -> None:
    calls: list[int] = []
    callback = ember.Callback()
    callback.on_train_epoch_start = lambda trainer, pl_module: calls.append(trainer.current_epoch)
    trainer_factory(callbacks=[callback], max_epochs=2, limit_train_batches=1).fit(tiny_model)
    assert calls == [0, 1]


def test_a_module_of_hookimpls_passed_as_a_callback_is_a_plugin(trainer_factory, tiny_model) -> None:
    name = "ember_test_module_plugin"
    module = types.ModuleType(name)
    exec(
        "import ember\nseen = []\n@ember.hookimpl\ndef on_fit_end(trainer):\n    seen.append(trainer.global_step)\n",
        module.__dict__,
    )
    sys.modules[name] = module
    try:
        trainer = trainer_factory(callbacks=[sys.modules[name]], max_epochs=1, limit_train_batches=2)
        trainer.fit(tiny_model)
    finally:
        del sys.modules[name]
    assert module.seen == [2]
    assert trainer.plugin_manager.get_plugin(name) is module


def test_an_exception_inside_a_plugin_hook_names_the_plugin(trainer_factory, tiny_model) -> None:
    class Exploding(ember.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            raise ValueError("plugin bug")

    with pytest.raises(ValueError, match="plugin bug") as error:
        trainer_factory(callbacks=[Exploding()], max_epochs=1).fit(tiny_model)
    assert any("Exploding" in note and "on_train_batch_end" in note for note in error.value.__notes__)


def test_the_short_call_path_returns_what_pluggy_returns() -> None:
    class Returns(ember.Callback):
        def __init__(self, value):
            self.value = value

        def state_dict(self):
            return {"v": self.value}

    class Silent(ember.Callback):
        def state_dict(self):
            return None

    class Defaulted:
        @ember.hookimpl
        def on_fit_end(self, trainer, pl_module=None):
            return "defaulted"

    manager = PluginManager()
    for plugin in (Returns(1), Silent(), Returns(2)):
        manager.register(plugin)
    manager.register(Defaulted())
    assert manager.hook.state_dict() == [{"v": 1}, {"v": 2}]
    assert manager.callers()["state_dict"]() == [{"v": 1}, {"v": 2}]
    assert "state_dict" in manager._plain and "on_fit_end" not in manager._plain  # defaults take pluggy's path
    assert manager.hook.on_fit_end(trainer=None, pl_module=None) == ["defaulted"]


class Notes:
    """A hookimpl plugin taking a subset of on_before_backward's arguments; answers with its label."""

    def __init__(self, label, answer=True):
        self.label, self.answer, self.seen = label, answer, []

    @ember.hookimpl
    def on_before_backward(self, loss):
        self.seen.append(loss)
        return self.label if self.answer else None


def test_a_written_caller_passes_each_its_arguments_and_combines_results_as_pluggy() -> None:
    manager = PluginManager()
    first, silent, last = Notes("first"), Notes("silent", answer=False), Notes("last")
    for plugin in (first, silent, last):
        manager.register(plugin)
    caller = manager.callers()["on_before_backward"]
    assert caller.__code__.co_filename == "<ember hook on_before_backward>"  # written out, not pluggy's loop
    assert caller(trainer=None, pl_module=None, loss=3) == ["first", "last"]
    assert manager.hook.on_before_backward(trainer=None, pl_module=None, loss=3) == ["first", "last"]
    assert first.seen == silent.seen == last.seen == [3, 3]


def test_a_firstresult_hook_s_written_caller_stops_at_the_first_answer() -> None:
    class Replaces:
        def __init__(self, answer):
            self.answer, self.calls = answer, 0

        @ember.hookimpl
        def ember_loss(self, loss):
            self.calls += 1
            return self.answer

    manager = PluginManager()
    plugins = [Replaces(None), Replaces("second"), Replaces("third")]
    for plugin in plugins:
        manager.register(plugin)
    assert manager.callers()["ember_loss"](trainer=None, pl_module=None, loss=1) == "second"
    assert [plugin.calls for plugin in plugins] == [1, 1, 0]


def test_a_caller_built_before_a_registration_calls_the_new_plugin_too() -> None:
    manager = PluginManager()
    before = Notes("before")
    manager.register(before)
    caller = manager.callers()["on_before_backward"]
    manager.register(Notes("after"))
    assert caller(trainer=None, pl_module=None, loss=1) == ["before", "after"]
    manager.unregister(before)
    assert caller(trainer=None, pl_module=None, loss=2) == ["after"]


def test_hook_call_monitoring_added_after_the_callers_were_built_sees_their_calls() -> None:
    manager = PluginManager()
    manager.register(Notes("only"))
    caller = manager.callers()["on_before_backward"]
    seen = []
    undo = manager.add_hookcall_monitoring(
        lambda name, impls, kwargs: seen.append((name, kwargs["loss"])), lambda *a: None
    )
    caller(trainer=None, pl_module=None, loss=5)
    undo()
    caller(trainer=None, pl_module=None, loss=6)
    assert seen == [("on_before_backward", 5)]
