"""Test-suite options: ``--slow`` adds the multi-process and real-install suites to the run."""

from __future__ import annotations

import pytest
import torch


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
