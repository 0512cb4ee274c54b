"""ember-example's own tests, written with ember.testing's fixtures."""

import pytest
from ember_example.counter import BatchCounter


def test_counts_training_batches(trainer_factory, tiny_model):
    counter = BatchCounter()
    trainer_factory(callbacks=[counter], max_epochs=2, limit_train_batches=3).fit(tiny_model)
    assert counter.batches == 6


@pytest.mark.ember_plugins("example_hooks")  # ember.testing loads only the installed plugins a test names
def test_hooks_module_prints_each_epoch(trainer_factory, tiny_model, capsys):
    trainer_factory(max_epochs=2, limit_train_batches=1).fit(tiny_model)
    out = capsys.readouterr().out
    assert "ember-example: fit starts, 2 epoch(s)" in out
    assert "ember-example: epoch 1 done" in out
