"""The pytest plugin behind ``ember.testing``: fixtures only, nothing runs at import.

Its Trainer fixtures run with third-party autoloading off, so a broken or
unrelated installed plugin cannot fail a plugin author's tests; a test asks
for installed plugins by entry-point name with
``@pytest.mark.ember_plugins("name", ...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ember_plugins(*names): load these installed ember plugins in this test; other third parties stay off",
    )


@pytest.fixture
def ember_plugins(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    """Third-party plugin autoloading off for this test, but for those its ``ember_plugins`` marker names."""
    marker = request.node.get_closest_marker("ember_plugins")
    names: tuple[str, ...] = tuple(marker.args) if marker is not None else ()
    monkeypatch.setenv("EMBER_DISABLE_PLUGIN_AUTOLOAD", "1")
    if names:
        monkeypatch.setenv("EMBER_PLUGINS", ",".join(names))
    else:
        monkeypatch.delenv("EMBER_PLUGINS", raising=False)
    return names


@pytest.fixture
def trainer_factory(tmp_path: Path, ember_plugins: tuple[str, ...]) -> Callable[..., Any]:
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
