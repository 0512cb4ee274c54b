"""The Logger base class third parties subclass to send metrics somewhere new.

The Trainer calls a logger from global rank 0 only; ``log_metrics`` gets
floats and the step, ``log_hyperparams`` a dict, ``finalize`` the run's
status ("success" or "failed").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class Logger(ABC):
    """Base class of ember's loggers."""

    @property
    @abstractmethod
    def name(self) -> str | None:
        """The experiment's name (a folder under ``save_dir`` for file loggers)."""

    @property
    @abstractmethod
    def version(self) -> int | str | None:
        """The run's version (``version_N`` folders for file loggers)."""

    @property
    def save_dir(self) -> str | None:
        """Where this logger writes, if it writes files."""
        return None

    @property
    def root_dir(self) -> str | None:
        """``save_dir/name``."""
        if self.save_dir is None:
            return None
        return str(Path(self.save_dir) / (self.name or ""))

    @property
    def log_dir(self) -> str | None:
        """``save_dir/name/version_N``: where this run's files go, checkpoints included."""
        if self.root_dir is None:
            return None
        version = self.version if isinstance(self.version, str) else f"version_{self.version}"
        return str(Path(self.root_dir) / version)

    @abstractmethod
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record ``metrics`` (names to numbers) at ``step``."""

    @abstractmethod
    def log_hyperparams(self, params: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:
        """Record the run's hyperparameters."""

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """Record the model's graph, where the backend supports it."""

    def save(self) -> None:
        """Write buffered records out."""

    def finalize(self, status: str) -> None:
        """Called once when the run ends, with "success" or "failed"."""
        self.save()

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Called after a checkpoint callback saved, e.g. to upload it."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of this logger, so a resumed run can continue its log."""
        return {"name": self.name, "version": self.version}
