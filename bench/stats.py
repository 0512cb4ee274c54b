"""The statistics behind bench/run.py's verdicts: confidence bounds on a median, and busy-machine detection.

A budget is judged on the median of per-round samples (one sample per round,
each round interleaving every configuration with the raw loop). The bounds
are distribution-free (the sign test's order statistics), so one slow round
cannot fake a miss and a fast outlier cannot fake a pass.
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import time
from dataclasses import dataclass, field

#: The environment of every timed process: one thread, no EMBER_* settings, and bytecode cached as users
#: have it (with PYTHONDONTWRITEBYTECODE every import would compile its sources again).
ENV = {
    key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE" and not key.startswith("EMBER_")
}
ENV.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

#: One-sided error allowed for "missed" and for "ok": 5% each.
ALPHA = 0.05
#: Other processes' average CPU use, in cores, above which the machine counts as busy.
BUSY_CORES = 0.3
#: Largest own cost, as a share of a step, that the raw loop may read against itself before timings are too noisy:
#: the tightest budget (1.03x) must stand clear of it. Drift of the machine's speed cancels out (the two take turns
#: every 50 steps); this catches what does not.
NOISE_FLOOR = 0.03
#: Share of its CPU time the raw loop may spend descheduled (wall over CPU time) before the machine counts as busy.
BUSY_WAITING = 0.10


def bound_index(n: int) -> int | None:
    """The k (1-based) such that the k-th smallest of n samples is below the median with probability >= 95%.

    None when n is too small for any order statistic to give that confidence (n < 5).
    """
    best = None
    cumulative = 0.0
    for k in range(1, n + 1):
        cumulative += math.comb(n, k - 1) / 2**n  # P(fewer than k samples below the median)
        if cumulative > ALPHA:
            break
        best = k
    return best


@dataclass
class Estimate:
    """A median with its distribution-free 95% bounds (one-sided each way)."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def bounds(self) -> tuple[float, float] | None:
        k = bound_index(len(self.samples))
        if k is None:
            return None
        ordered = sorted(self.samples)
        return ordered[k - 1], ordered[-k]


def verdict(estimate: Estimate, limit: float, busy: bool) -> str:
    """``ok``, ``MISSED`` (the median is over ``limit`` with 95% confidence), or why there is no verdict."""
    if busy:
        return "busy: no verdict"
    bounds = estimate.bounds
    if bounds is None:
        return "too few rounds: no verdict"
    low, high = bounds
    if low > limit:
        return "MISSED"
    if high <= limit:
        return "ok"
    return "ok (within noise)" if estimate.median <= limit else "over, within noise: no verdict"


def slower(new: Estimate, old: Estimate) -> bool:
    """Whether ``new`` is above ``old`` with confidence: its lower bound over the old upper bound."""
    new_bounds, old_bounds = new.bounds, old.bounds
    return new_bounds is not None and old_bounds is not None and new_bounds[0] > old_bounds[1]


@dataclass
class MachineWatch:
    """How much CPU other processes used while the bench ran, from /proc/stat minus our children's CPU time."""

    load_before: float = field(default_factory=lambda: os.getloadavg()[0])
    loads: list[float] = field(default_factory=list)
    _start: tuple[float, float, float] = field(default_factory=lambda: MachineWatch._now())

    @staticmethod
    def _now() -> tuple[float, float, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = resource.getrusage(resource.RUSAGE_SELF)
        mine = children.ru_utime + children.ru_stime + ours.ru_utime + ours.ru_stime
        return time.monotonic(), _busy_cpu_seconds(), mine

    def sample(self) -> None:
        self.loads.append(os.getloadavg()[0])

    def others_cores(self) -> float | None:
        """Average number of cores other processes kept busy since the watch began; None off Linux."""
        wall0, busy0, mine0 = self._start
        wall1, busy1, mine1 = self._now()
        if busy0 < 0 or busy1 < 0 or wall1 <= wall0:
            return None
        return max(0.0, (busy1 - busy0) - (mine1 - mine0)) / (wall1 - wall0)

    def busy_reasons(self, floor: list[float], raw_rounds: list[float], raw_cpu_rounds: list[float]) -> list[str]:
        """Why the timings cannot be trusted; empty on a quiet machine.

        :param floor: the raw loop's own cost against itself, per round: what the method reads where there is nothing.
        :param raw_rounds: the raw loop's wall time per step, per round; ``raw_cpu_rounds`` its CPU time.
        """
        reasons = []
        cores = os.cpu_count() or 1
        if self.load_before > max(1.0, cores / 2):
            reasons.append(f"load average {self.load_before:.2f} before the bench started ({cores} cores)")
        others = self.others_cores()
        if others is not None and others > BUSY_CORES:
            reasons.append(f"other processes used {others:.2f} cores on average during the bench")
        if raw_rounds:
            raw = statistics.median(raw_cpu_rounds)
            bounds = Estimate(floor).bounds
            error = max(abs(bound) for bound in bounds) if bounds else 0.0
            if error > NOISE_FLOOR * raw:
                reasons.append(
                    f"the raw loop against itself read up to {error:.1f} µs of own cost ({error / raw:.1%} of a step), "
                    f"more than the {NOISE_FLOOR:.0%} the tightest budget needs to be told apart"
                )
            waiting = statistics.median(raw_rounds) / raw - 1
            if waiting > BUSY_WAITING:
                reasons.append(f"the raw loop waited {waiting:.0%} of its CPU time (descheduled)")
        return reasons


def _busy_cpu_seconds() -> float:
    """Machine-wide non-idle CPU seconds since boot, from /proc/stat; -1 where there is none."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return -1.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal; guest is inside user
    return busy / os.sysconf("SC_CLK_TCK")


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least-squares slope and intercept, and the largest distance of a point from the line."""
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
    intercept = mean_y - slope * mean_x
    return slope, intercept, max(abs(y - (intercept + slope * x)) for x, y in zip(xs, ys))
