"""Lightning's rules for the callback list: model callbacks, checkpoints last, unique state keys."""

from __future__ import annotations

import pytest

import ember
from ember.callback import Checkpoint
from ember.errors import MisconfigurationError
from ember.testing import TinyModel


class Counter(ember.Callback):
    def __init__(self, what: str = "batches") -> None:
        self.what, self.count = what, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.count += 1

    @property
    def state_key(self) -> str:
        return self._generate_state_key(what=self.what)

    def state_dict(self):
        return {"count": self.count}


class SpecialCounter(Counter):
    pass


class Other(ember.Callback):
    pass


class Saver(Checkpoint):
    pass


def test_configure_callbacks_replaces_same_and_parent_types_and_appends_the_rest(trainer_factory) -> None:
    trainer_counter, other = Counter(), Other()
    model_callbacks = [SpecialCounter(), Other()]

    class Model(TinyModel):
        def configure_callbacks(self):
            return model_callbacks

    trainer = trainer_factory(callbacks=[trainer_counter, other], max_epochs=1, limit_train_batches=2)
    trainer.fit(Model())
    assert trainer.callbacks == model_callbacks
    assert model_callbacks[0].count == 2 and trainer_counter.count == 0


def test_model_callbacks_are_merged_for_validate_too(trainer_factory) -> None:
    seen = []

    class Watcher(ember.Callback):
        def on_validation_start(self, trainer, pl_module):
            seen.append("validation")

    class Model(TinyModel):
        def configure_callbacks(self):
            return Watcher()

    trainer_factory().validate(Model(), verbose=False)
    assert seen == ["validation"]


def test_checkpoint_callbacks_come_last(trainer_factory) -> None:
    saver, counter, other = Saver(), Counter(), Other()
    trainer = trainer_factory(callbacks=[saver, counter, other])
    assert trainer.callbacks == [counter, other, saver]


def test_two_stateful_callbacks_with_one_state_key_are_an_error(trainer_factory) -> None:
    with pytest.raises(MisconfigurationError, match="state_key \"Counter\\{'what': 'batches'\\}\""):
        trainer_factory(callbacks=[Counter(), Counter()])


def test_stateful_callbacks_with_distinct_keys_and_stateless_duplicates_are_fine(trainer_factory) -> None:
    trainer = trainer_factory(callbacks=[Counter("batches"), Counter("epochs"), Other(), Other()])
    assert len(trainer.callbacks) == 4
