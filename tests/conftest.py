"""Test-suite options: ``--slow`` adds the multi-process and real-install suites to the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

#: The settings of plugin discovery that a test of it must not inherit from the environment.
PLUGIN_ENV = ("EMBER_DISABLE_PLUGIN_AUTOLOAD", "EMBER_PLUGINS", "EMBER_DISABLE_PLUGINS", "EMBER_STRICT_PLUGINS")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run tests marked slow (DDP, real pip installs)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    """Tiny models train faster on one thread, and results do not depend on the core count."""
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _no_third_party_plugins(ember_plugins: tuple[str, ...]) -> None:
    """Installed third-party plugins stay out of every test unless it names them (ember.testing's isolation)."""


@pytest.fixture
def plugin_discovery_fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No plugin settings from outside, a fresh working folder, and discovery's caches empty before and after."""
    from ember.core import discovery

    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    discovery.clear_cache()
    yield
    discovery.clear_cache()
