"""DDPStrategy's collective timeout: given, from EMBER_DDP_TIMEOUT, or 30 minutes; bad values named."""

from __future__ import annotations

from datetime import timedelta

import pytest

import ember
from ember.errors import MisconfigurationError
from ember.strategies import DDPStrategy


def test_the_default_timeout_is_30_minutes(monkeypatch) -> None:
    monkeypatch.delenv("EMBER_DDP_TIMEOUT", raising=False)
    assert DDPStrategy().timeout == timedelta(minutes=30)


def test_the_environment_variable_sets_it_in_seconds(monkeypatch) -> None:
    monkeypatch.setenv("EMBER_DDP_TIMEOUT", "45")
    assert DDPStrategy().timeout == timedelta(seconds=45)


def test_an_explicit_timeout_wins_and_devices_come_from_the_trainer(monkeypatch) -> None:
    monkeypatch.setenv("EMBER_DDP_TIMEOUT", "45")
    trainer = ember.Trainer(strategy=DDPStrategy(timeout=10), accelerator="cpu", devices=3, logger=False)
    assert trainer.strategy.timeout == timedelta(seconds=10)
    assert trainer.world_size == 3


@pytest.mark.parametrize("bad", [0, -5, "soon", timedelta(0)])
def test_a_bad_timeout_is_named(bad) -> None:
    with pytest.raises(MisconfigurationError, match="timeout="):
        DDPStrategy(timeout=bad)


def test_a_bad_environment_value_is_named(monkeypatch) -> None:
    monkeypatch.setenv("EMBER_DDP_TIMEOUT", "ten")
    with pytest.raises(MisconfigurationError, match="EMBER_DDP_TIMEOUT='ten'"):
        DDPStrategy()


def test_fsdp_takes_the_same_timeout() -> None:
    from ember.strategies import FSDPStrategy

    assert FSDPStrategy(timeout=timedelta(minutes=2)).timeout == timedelta(minutes=2)


def test_rank_failed_error_names_the_rank_and_code_and_pickles() -> None:
    import pickle

    from ember.errors import RankFailedError

    error = pickle.loads(pickle.dumps(RankFailedError(3, 137)))
    assert (error.rank, error.exit_code) == (3, 137)
    assert "rank 3 exited with code 137" in str(error)
