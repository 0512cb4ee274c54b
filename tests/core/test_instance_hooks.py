"""Hooks assigned on an instance are called, as Lightning calls whatever ``getattr`` finds."""

from __future__ import annotations

import functools

import ember
from ember.testing import TinyModel


def test_a_hook_set_on_the_model_instance_is_called(trainer_factory) -> None:
    epochs: list[int] = []
    model = TinyModel()
    model.on_train_epoch_end = lambda: epochs.append(model.current_epoch)
    trainer_factory(max_epochs=2, limit_train_batches=2, limit_val_batches=0).fit(model)
    assert epochs == [0, 1]


def test_a_batch_hook_set_on_the_model_instance_gets_its_arguments(trainer_factory) -> None:
    seen: list[int] = []
    model = TinyModel()
    model.on_train_batch_end = lambda outputs, batch, batch_idx: seen.append(batch_idx)
    trainer_factory(max_epochs=1, limit_train_batches=3, limit_val_batches=0).fit(model)
    assert seen == [0, 1, 2]


def record(calls: list[str], tag: str, trainer: ember.Trainer, pl_module: ember.Module) -> None:
    calls.append(f"{tag}:{trainer.current_epoch}")


def test_a_partial_set_as_a_callback_hook_is_called(trainer_factory, tiny_model) -> None:
    calls: list[str] = []
    callback = ember.Callback()
    callback.on_train_epoch_end = functools.partial(record, calls, "partial")
    trainer_factory(callbacks=[callback], max_epochs=2, limit_train_batches=1).fit(tiny_model)
    assert calls == ["partial:0", "partial:1"]


def test_a_partial_binding_keywords_is_called(trainer_factory, tiny_model) -> None:
    calls: list[str] = []

    def hook(trainer, pl_module, *, tag):
        calls.append(tag)

    callback = ember.Callback()
    callback.on_train_start = functools.partial(hook, tag="keyword")
    trainer_factory(callbacks=[callback], max_epochs=1, limit_train_batches=1).fit(tiny_model)
    assert calls == ["keyword"]


def test_a_callable_object_as_a_callback_hook_is_called(trainer_factory, tiny_model) -> None:
    class Counter:
        count = 0

        def __call__(self, trainer, pl_module):
            self.count += 1

    counter = Counter()
    callback = ember.Callback()
    callback.on_train_epoch_start = counter
    trainer_factory(callbacks=[callback], max_epochs=3, limit_train_batches=1).fit(tiny_model)
    assert counter.count == 3


def test_a_partial_as_a_class_attribute_is_called(trainer_factory, tiny_model) -> None:
    calls: list[str] = []

    class Announce(ember.Callback):
        on_fit_end = functools.partial(record, calls, "class")

    trainer_factory(callbacks=[Announce()], max_epochs=1, limit_train_batches=1).fit(tiny_model)
    assert calls == ["class:1"]
