"""BatchCounter: counts training batches and says how many at the end of fit."""

from __future__ import annotations

from typing import Any

import ember
from ember.core.settings import plugin_settings


class BatchCounter(ember.Callback):
    """Counts training batches; the count survives checkpoints.

    :param label: printed before the count; by default ``label`` from
        ``[tool.ember.example_counter]`` in the nearest pyproject.toml, else "example_counter".
    """

    def __init__(self, label: str | None = None) -> None:
        self.label = label or plugin_settings("example_counter").get("label", "example_counter")
        self.batches = 0

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.batches += 1

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        print(f"{self.label}: {self.batches} training batches")

    def state_dict(self) -> dict[str, Any]:
        return {"batches": self.batches}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batches = state_dict["batches"]
