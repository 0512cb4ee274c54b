"""Hook functions: a plain plugin may take any subset of a hook's arguments, by name."""

from __future__ import annotations

from typing import Any

import ember


@ember.hookimpl
def on_fit_start(trainer: Any) -> None:
    print(f"ember-example: fit starts, {trainer.max_epochs} epoch(s)")


@ember.hookimpl
def on_train_epoch_end(trainer: Any) -> None:
    print(f"ember-example: epoch {trainer.current_epoch} done")
