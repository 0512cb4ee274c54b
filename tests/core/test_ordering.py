"""Declared order: ember.order(before=/after=) on a class or one hook, resolved as a graph."""

from __future__ import annotations

import itertools
import types
from typing import Any

import pytest

import ember
from ember.core.pluginmanager import PluginManager
from ember.errors import PluginError

calls: list[str] = []


class Recorder(ember.Callback):
    def on_train_start(self, trainer, pl_module):
        calls.append(type(self).__name__)

    def on_train_end(self, trainer, pl_module):
        calls.append(type(self).__name__)


class Loader(Recorder):
    pass


@ember.order(after=Loader)
class Consumer(Recorder):
    pass


@ember.order(before="Loader")
class Preparer(Recorder):
    pass


class Plain(Recorder):
    pass


def call_order(manager: PluginManager, hook: str) -> list[str]:
    return [type(plugin).__name__ for _, plugin, _ in manager.call_order(hook)]


def fit(trainer_factory: Any, tiny_model: Any, callbacks: list[Any], **flags: Any) -> list[str]:
    calls.clear()
    trainer_factory(callbacks=callbacks, max_epochs=1, limit_train_batches=1, **flags).fit(tiny_model)
    return list(calls)


def test_without_declarations_the_callbacks_list_order_stays(trainer_factory, tiny_model) -> None:
    assert fit(trainer_factory, tiny_model, [Plain(), Loader()]) == ["Plain", "Loader", "Plain", "Loader"]


@pytest.mark.parametrize("permutation", list(itertools.permutations([Consumer, Loader, Preparer, Plain])))
def test_constraints_hold_whatever_the_registration_order(permutation: tuple[type, ...]) -> None:
    manager = PluginManager()
    for cls in permutation:
        manager.register(cls())
    order = call_order(manager, "on_train_start")
    assert order.index("Preparer") < order.index("Loader") < order.index("Consumer")


def test_an_undeclared_plugin_keeps_its_list_position_relative_to_the_others() -> None:
    manager = PluginManager()
    for cls in (Consumer, Plain, Loader):
        manager.register(cls())
    assert call_order(manager, "on_train_start") == ["Plain", "Loader", "Consumer"]


def test_a_constraint_on_one_hook_leaves_the_others_in_list_order() -> None:
    class Late(Recorder):
        @ember.order(after="Plain")
        def on_train_start(self, trainer, pl_module):
            calls.append("Late")

    manager = PluginManager()
    manager.register(Late())
    manager.register(Plain())
    assert call_order(manager, "on_train_start") == ["Plain", "Late"]
    assert call_order(manager, "on_train_end") == ["Late", "Plain"]


def test_hookimpl_modules_declare_order_by_entry_point_name() -> None:
    module = types.ModuleType("first_plugin")

    @ember.hookimpl
    def on_train_start(trainer: Any) -> None:
        calls.append("first_plugin")

    module.on_train_start = on_train_start  # type: ignore[attr-defined]
    module.__ember_order__ = ember.order(before="loader_plugin")  # type: ignore[attr-defined]
    manager = PluginManager()
    manager.register(Loader(), name="loader_plugin")
    manager.register(module, name="first_plugin")
    assert [name for name, _, _ in manager.call_order("on_train_start")] == ["first_plugin", "loader_plugin"]


def test_declared_order_holds_in_a_real_fit(trainer_factory, tiny_model) -> None:
    assert fit(trainer_factory, tiny_model, [Consumer(), Loader()])[:2] == ["Loader", "Consumer"]


def test_a_cycle_is_an_error_before_training_naming_every_member(trainer_factory) -> None:
    @ember.order(after="B")
    class A(Recorder):
        pass

    @ember.order(after="C")
    class B(Recorder):
        pass

    @ember.order(after="A")
    class C(Recorder):
        pass

    with pytest.raises(PluginError, match="cycle") as raised:
        trainer_factory(callbacks=[A(), Plain(), B(), C()])
    message = str(raised.value)
    assert all(f"'{name}'" in message.split("cycle among plugins")[1].split(":")[0] for name in "ABC")
    assert "'Plain'" not in message


def test_reverse_end_hooks_calls_end_hooks_in_teardown_order(trainer_factory, tiny_model, monkeypatch) -> None:
    monkeypatch.setenv("EMBER_END_HOOKS", "reverse")
    assert fit(trainer_factory, tiny_model, [Plain(), Loader()]) == ["Plain", "Loader", "Loader", "Plain"]


def test_the_reason_for_each_position_is_given() -> None:
    manager = PluginManager()
    manager.register(Consumer())
    manager.register(Loader())
    reasons = {type(plugin).__name__: why for _, plugin, why in manager.call_order("on_train_start")}
    assert reasons["Loader"] == "registered 2nd"
    assert reasons["Consumer"] == "registered 1st; after 'Loader' (declared by 'Consumer')"


def test_order_rejects_what_is_not_a_plugin_reference() -> None:
    with pytest.raises(TypeError, match="accepted are entry-point or plugin names"):
        ember.order(after=3)  # type: ignore[arg-type]


def test_a_hookimpl_function_declares_order_for_its_hook() -> None:
    class Early:
        @ember.order(before=Plain)
        @ember.hookimpl
        def on_train_start(self, trainer: Any) -> None:
            calls.append("Early")

    manager = PluginManager()
    manager.register(Plain())
    manager.register(Early())
    assert call_order(manager, "on_train_start") == ["Early", "Plain"]
