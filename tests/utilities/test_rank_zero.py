"""ember.utilities.rank_zero: Lightning's rank-zero helpers, as a ported callback uses them."""

from __future__ import annotations

import logging

import pytest

import ember
from ember.utilities import rank_prefixed_message, rank_zero_debug, rank_zero_info, rank_zero_only, rank_zero_warn
from ember.utilities.rank_zero import LightningDeprecationWarning, rank_zero_deprecation


def test_rank_zero_only_is_embers_own_so_strategies_set_its_rank():
    assert rank_zero_only is ember.rank_zero_only


def test_rank_zero_only_skips_the_function_on_other_ranks(monkeypatch):
    @rank_zero_only
    def save_images():
        return "saved"

    assert save_images() == "saved"
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    assert save_images() is None


def test_rank_zero_info_and_debug_log_on_the_ember_logger(caplog):
    with caplog.at_level(logging.DEBUG, logger="ember"):
        rank_zero_info("restored %d weights", 3)
        rank_zero_debug("details")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "restored 3 weights"),
        ("DEBUG", "details"),
    ]


def test_rank_zero_info_says_nothing_on_other_ranks(caplog, monkeypatch):
    monkeypatch.setattr(rank_zero_only, "rank", 2)
    with caplog.at_level(logging.INFO, logger="ember"):
        rank_zero_info("only rank 0 says this")
    assert caplog.records == []


def test_rank_zero_warn_takes_lightnings_keywords():
    with pytest.warns(RuntimeWarning, match="the dataloader has few workers"):
        rank_zero_warn("the dataloader has few workers", category=RuntimeWarning)


def test_rank_zero_deprecation_warns_with_lightnings_category():
    with pytest.warns(LightningDeprecationWarning, match="old_flag"):
        rank_zero_deprecation("old_flag is deprecated")


def test_rank_prefixed_message_names_the_rank():
    assert rank_prefixed_message("saving", 1) == "[rank: 1] saving"
    assert rank_prefixed_message("saving", None) == "saving"
