"""bench/run.py's verdict rules (bench/stats.py), checked on made-up samples: nothing here is timed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from stats import Estimate, bound_index, linear_fit, slower, verdict  # noqa: E402


@pytest.mark.parametrize(("rounds", "k"), [(3, None), (4, None), (5, 1), (7, 1), (9, 2), (20, 6)])
def test_the_95_percent_bound_uses_the_order_statistic_the_sign_test_allows(rounds, k) -> None:
    assert bound_index(rounds) == k


def test_a_budget_is_missed_only_when_every_round_that_bounds_the_median_is_over_it() -> None:
    assert verdict(Estimate([12.0, 13.0, 11.5, 14.0, 12.5]), limit=10.0, busy=False) == "MISSED"
    assert verdict(Estimate([12.0, 13.0, 9.5, 14.0, 12.5]), limit=10.0, busy=False) == "over, within noise: no verdict"


def test_a_budget_is_met_when_the_upper_bound_is_within_it_and_within_noise_when_only_the_median_is() -> None:
    assert verdict(Estimate([2.0, 3.0, 1.0, 4.0, 2.5]), limit=10.0, busy=False) == "ok"
    assert verdict(Estimate([2.0, 3.0, 1.0, 40.0, 2.5]), limit=10.0, busy=False) == "ok (within noise)"


def test_a_busy_machine_or_too_few_rounds_give_no_verdict() -> None:
    assert verdict(Estimate([50.0] * 7), limit=10.0, busy=True) == "busy: no verdict"
    assert verdict(Estimate([50.0] * 3), limit=10.0, busy=False) == "too few rounds: no verdict"


def test_a_row_is_slower_than_its_baseline_only_when_the_bounds_do_not_overlap() -> None:
    before = Estimate([10.0, 11.0, 12.0, 10.5, 11.5])
    assert slower(Estimate([13.0, 14.0, 12.5, 15.0, 13.5]), before)
    assert not slower(Estimate([13.0, 14.0, 11.0, 15.0, 13.5]), before)
    assert not slower(Estimate([13.0, 14.0]), before)


def test_the_scaling_fit_reports_slope_intercept_and_the_worst_deviation() -> None:
    slope, intercept, worst = linear_fit([0, 1, 10, 50, 100], [5.0, 7.0, 25.0, 105.0, 206.0])
    assert slope == pytest.approx(2.01, abs=0.01)
    assert intercept == pytest.approx(5.0, abs=0.3)
    assert worst < 1.0


def test_every_budget_of_issue_18_is_a_row_of_the_bench() -> None:
    from run import scaling_rows, system_rows, training_rows

    steps = {"tiny": 100, "mid": 20, "ddp": 100}
    rows = {row.name: row.budget for row in training_rows(steps, with_lightning=False) + system_rows(steps)}
    assert rows["everything optional off"] == 1.03
    assert rows["defaults (Trainer() as it comes)"] == 1.05
    assert rows["10 callbacks overriding every hook"] == 1.08
    assert rows["10 hookimpl plugins"] == 1.05
    assert rows["self.log(prog_bar=True) every step"] == 1.05
    assert rows["two-way hook points, unused"] == 1.03
    assert rows["declared ordering, unused (10 plugins)"] == 1.05
    assert rows["mid-size: autoresume, default interval"] == 1.02
    assert rows["DDP 2 ranks (gloo) vs hand-written DDP"] == 1.05
    assert rows["FSDP 2 ranks vs hand-written fully_shard"] == 1.05
    assert rows["checkpoint save+load, 200 MB, vs torch.save+fsync/load"] == 1.15
    assert rows["import ember (ms)"] == 40.0
    assert rows["ember plugins list, 100 more distributions (ms)"] == 100.0
    assert rows["Trainer() to the first step, defaults (ms)"] == 50.0
    callbacks, metrics = scaling_rows(steps)
    assert [row.name for row in callbacks] == [f"{n} callbacks" for n in (0, 1, 10, 50, 100)]
    assert [row.name for row in metrics] == [f"{n} metrics" for n in (0, 1, 10, 100)]


def test_a_noisy_noise_floor_withholds_the_verdict() -> None:
    from stats import MachineWatch

    watch = MachineWatch(load_before=0.0)
    raw = [500.0] * 5
    noisy = watch.busy_reasons([-40.0, 30.0, 25.0, -20.0, 35.0], raw, raw)
    quiet = watch.busy_reasons([-2.0, 1.0, 3.0, -1.5, 0.5], raw, raw)
    assert any("against itself" in reason for reason in noisy)
    assert not any("against itself" in reason for reason in quiet)


def test_a_configuration_runs_with_its_raw_loop_interleaved_and_reports_both() -> None:
    import torch
    import workload

    torch.set_num_threads(1)
    result = workload.run_job("ember", {"model": "tiny", "steps": 150, "optional": "off"})
    assert result["cpu_us"] > 0 and result["raw_cpu_us"] > 0 and result["raw_wall_us"] > 0
    alone = workload.run_job("raw", {"model": "tiny", "steps": 150})
    assert "raw_cpu_us" not in alone


def test_the_raw_loop_that_clears_gradients_as_ember_does_is_timed_against_the_plain_one() -> None:
    import torch
    import workload

    torch.set_num_threads(1)
    result = workload.run_job("raw", {"model": "tiny", "steps": 150, "interleaved": True, "clear": True})
    assert result["cpu_us"] > 0 and result["raw_cpu_us"] > 0 and result["raw_wall_us"] > 0
