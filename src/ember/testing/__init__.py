"""ember.testing: what a plugin author needs to test a callback in a few lines.

Installed with ember as a pytest plugin (entry point ``pytest11``), it gives
every test these fixtures:

* ``trainer_factory`` -- ``trainer_factory(callbacks=[MyCallback()], max_epochs=2)`` returns a
  Trainer with fast defaults (no progress bar, no summary, no checkpointing,
  no logger, in a temporary folder) that any keyword overrides; a checkpoint,
  progress bar or summary callback you pass is used rather than refused;
* ``tiny_model`` / ``tiny_datamodule`` -- a small regression model and its data;
* ``hook_recorder`` -- a callback that records every hook call, with
  ``assert_sequence([...])`` to check an order.

``ember.testing.HostSyncs()`` records, step by step, where training reads tensor
values into Python (a GPU run would wait there); see docs/performance.md.

``ember.testing.CrashAfter(path, epoch=..., step=...)`` saves a checkpoint and
raises ``SimulatedCrash``, to test that a plugin's state survives a resume.

Example::

    def test_my_callback_counts_batches(trainer_factory, tiny_model):
        counter = BatchCounter()
        trainer_factory(callbacks=[counter], max_epochs=1, limit_train_batches=3).fit(tiny_model)
        assert counter.batches == 3

Importing this package does not import torch; the names below load it on use.
"""

from __future__ import annotations

from ember import _lazy

__all__ = [
    "CrashAfter",
    "HookRecorder",
    "HostSyncs",
    "SimulatedCrash",
    "TinyDataModule",
    "TinyModel",
    "make_trainer",
    "recording_module",
]

_LAZY = {
    "CrashAfter": "ember.testing.crash",
    "SimulatedCrash": "ember.testing.crash",
    "HookRecorder": "ember.testing.recorder",
    "HostSyncs": "ember.testing.syncs",
    "recording_module": "ember.testing.recorder",
    "TinyDataModule": "ember.testing.models",
    "TinyModel": "ember.testing.models",
    "make_trainer": "ember.testing.models",
}

__getattr__, __dir__ = _lazy.attributes(__name__, _LAZY, listed=__all__)
