"""The pytest plugin behind ``ember.testing``: fixtures only, nothing runs at import."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def trainer_factory(tmp_path: Path) -> Callable[..., Any]:
    """Build Trainers with fast test defaults in a temporary folder; keywords override the defaults."""
    from ember.testing.models import make_trainer

    def factory(**overrides: Any) -> Any:
        return make_trainer(tmp_path, **overrides)

    return factory


@pytest.fixture
def tiny_model() -> Any:
    """A fresh :class:`ember.testing.TinyModel`."""
    from ember.testing.models import TinyModel

    return TinyModel()


@pytest.fixture
def tiny_datamodule() -> Any:
    """A fresh :class:`ember.testing.TinyDataModule`."""
    from ember.testing.models import TinyDataModule

    return TinyDataModule()


@pytest.fixture
def hook_recorder() -> Any:
    """A fresh :class:`ember.testing.HookRecorder` callback."""
    from ember.testing.recorder import HookRecorder

    return HookRecorder()
