"""ember's own cost against a raw PyTorch loop (and pytorch-lightning, for context), judged against budgets.

    python bench/run.py              # 8 interleaved rounds, about 15 minutes on an idle 2-core machine
    python bench/run.py --quick      # 5 rounds of shorter runs, about 5 minutes
    python bench/run.py --check      # exit 1 when a budget is missed with 95% confidence, 2 when busy
    python bench/run.py --save before.json; ...; python bench/run.py --baseline before.json
                                     # compare each row's own cost with an earlier run's

Every round runs each group of configurations in a fresh process, one thread,
in a shuffled order, with the raw loop in the same process; a configuration's
own cost in that round is its time per step minus the raw loop's. Over the
rounds the bench reports the median own cost with distribution-free 95%
bounds (bench/stats.py), in CPU time (what is judged) and wall time, and the
ratio to the raw loop. A budget is MISSED only when even the lower bound is
over it. When other processes used the CPU during the run, or the raw loop's
timings spread too much, no verdict is given. docs/performance.md explains the
table and the budgets.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from plugins_list import fake_site  # noqa: E402
from stats import ENV, Estimate, MachineWatch, linear_fit, slower, verdict  # noqa: E402
from workload import STEP_HOOKS  # noqa: E402

Job = tuple[str, str]  # (framework, options as sorted JSON): one run inside a workload process


def job(framework: str, **options: Any) -> Job:
    return framework, json.dumps(options, sort_keys=True)


#: The base of a row whose job runs its own raw loop, interleaved with it in blocks (bench/workload.py's RawLoop).
INTERLEAVED: Job = ("interleaved", "{}")


@dataclass
class Row:
    """One line of the table: a configuration, the baseline it is measured against, and its budget."""

    name: str
    group: str
    job: Job
    base: Job | None = None  # None: an absolute figure (start-up), judged against ``budget`` in ms; else INTERLEAVED
    budget: float | None = None  # ratio to the base, or ms when base is None
    metric: str = "cpu_us"
    missing: str | None = None  # why the feature is not available; the row is then skipped
    same_as: str | None = None  # with --baseline: must not be slower than this row of the baseline run
    samples: list[float] = field(default_factory=list)
    base_samples: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    base_wall: list[float] = field(default_factory=list)


# ------------------------------------------------------------------ features
#: The hooks ember had before two-way hook points: Lightning's Callback hooks.
LIGHTNING_HOOK_COUNT = 39


def two_way_missing() -> str | None:
    from ember import hookspecs
    from ember.core.pluginmanager import HOOK_NAMES

    if getattr(hookspecs, "TWO_WAY_HOOKS", None) or len(HOOK_NAMES) > LIGHTNING_HOOK_COUNT:
        return None
    return "not available: ember has no hook points beyond Lightning's (issue 15, two-way hooks)"


def ordering_missing() -> str | None:
    import ember

    declares = any(hasattr(ember.Callback, name) for name in ("before", "after", "order"))
    try:
        declares = declares or "before" in inspect.signature(ember.hookimpl).parameters
    except (TypeError, ValueError):
        pass
    if declares or (HERE / "two_way.py").exists():
        return None
    return "not available: Callback declares no before=/after= ordering (issue 15)"


def autoresume_missing() -> str | None:
    import ember

    if "autoresume" in inspect.signature(ember.Trainer.__init__).parameters:
        return None
    return "not available: Trainer has no autoresume flag (issue 17)"


def fsdp_missing() -> str | None:
    if importlib.util.find_spec("ember.core.strategies.fsdp") is not None:
        return None
    return "not available: no ember.core.strategies.fsdp (issue 16)"


def lightning_missing() -> str | None:
    if importlib.util.find_spec("pytorch_lightning") is not None:
        return None
    return "not installed (pip install -e '.[bench]')"


# ---------------------------------------------------------------------- rows
def training_rows(steps: dict[str, int], with_lightning: bool) -> list[Row]:
    tiny = {"model": "tiny", "steps": steps["tiny"]}
    mid = {"model": "mid", "steps": steps["mid"]}
    raw, off = INTERLEAVED, {"optional": "off"}
    rows = [
        Row("raw loop against itself (the noise floor)", "tiny", job("raw", **tiny, interleaved=True), raw),
        Row(
            "raw loop clearing grads as ember does (grad = None)",
            "tiny",
            job("raw", **tiny, interleaved=True, clear=True),
            raw,
        ),
        Row("everything optional off", "tiny", job("ember", **tiny, **off), raw, 1.03),
        Row("defaults (Trainer() as it comes)", "tiny", job("ember", **tiny, optional="defaults"), raw, 1.05),
        Row("optional off but the TQDM bar", "tiny", job("ember", **tiny, **off, bar=True), raw),
        Row("10 callbacks overriding every hook", "tiny", job("ember", **tiny, **off, callbacks=10), raw, 1.08),
        Row("10 hookimpl plugins", "tiny", job("ember", **tiny, **off, plugins=10), raw, 1.05),
        Row(
            "self.log(prog_bar=True) every step", "tiny", job("ember", **tiny, optional="defaults", log=True), raw, 1.05
        ),
        Row("defaults + profiler='plugins'", "tiny", job("ember", **tiny, optional="defaults", profiler=True), raw),
        Row(
            "two-way hook points, unused",
            "tiny",
            job("ember", **tiny, **off),
            raw,
            1.03,
            missing=two_way_missing(),
            same_as="everything optional off",
        ),
        Row(
            "declared ordering, unused (10 plugins)",
            "tiny",
            job("ember", **tiny, **off, plugins=10),
            raw,
            1.05,
            missing=ordering_missing(),
            same_as="10 hookimpl plugins",
        ),
    ]
    if with_lightning:
        rows += [
            Row("lightning: everything optional off", "lightning", job("lightning", **tiny, **off), raw),
            Row("lightning: defaults", "lightning", job("lightning", **tiny, optional="defaults"), raw),
            Row("lightning: 10 callbacks", "lightning", job("lightning", **tiny, **off, callbacks=10), raw),
            Row(
                "lightning: self.log(prog_bar)",
                "lightning",
                job("lightning", **tiny, optional="defaults", log=True),
                raw,
            ),
        ]
    rows += [
        Row("mid-size: everything optional off", "mid", job("ember", **mid, **off), raw),
        Row("mid-size: defaults", "mid", job("ember", **mid, optional="defaults"), raw),
        Row(
            "mid-size: autoresume, default interval",
            "mid",
            job("ember", **mid, **off, autoresume=True),
            raw,
            1.02,
            missing=autoresume_missing(),
        ),
    ]
    return rows


def scaling_rows(steps: dict[str, int]) -> tuple[list[Row], list[Row]]:
    tiny = {"model": "tiny", "steps": steps["tiny"]}
    raw = INTERLEAVED
    # n = 0 is the same run as the "everything optional off" and "defaults" rows, not another one
    callbacks = [
        Row(f"{n} callbacks", "tiny", job("ember", **tiny, optional="off", **({"callbacks": n} if n else {})), raw)
        for n in (0, 1, 10, 50, 100)
    ]
    metrics = [
        Row(f"{n} metrics", "tiny", job("ember", **tiny, optional="defaults", **({"metrics": n} if n else {})), raw)
        for n in (0, 1, 10, 100)
    ]
    return callbacks, metrics


def system_rows(steps: dict[str, int]) -> list[Row]:
    parallel = {"model": "tiny", "steps": steps["ddp"]}
    rows = [
        Row(
            "DDP 2 ranks (gloo) vs hand-written DDP",
            "ddp-ember",
            job("ember", **parallel, optional="off", strategy="ddp_fork"),
            INTERLEAVED,
            1.05,
            metric="wall_us",
        ),
        Row(
            "FSDP 2 ranks vs hand-written fully_shard",
            "fsdp-ember",
            job("ember", **parallel, optional="off", strategy="fsdp"),
            INTERLEAVED,
            1.05,
            metric="wall_us",
            missing=fsdp_missing(),
        ),
        Row(
            "checkpoint save+load, 200 MB, vs torch.save+fsync/load",
            "checkpoint",
            job("checkpoint", pairs=3),
            INTERLEAVED,
            1.15,
            metric="wall_us",
        ),
        Row(
            "Trainer() to the first step, defaults (ms)",
            "startup",
            job("ember", model="tiny", steps=30, optional="defaults"),
            None,
            50.0,
            metric="first_step_ms",
        ),
        Row("import ember (ms)", "import", ("import", "{}"), None, 40.0, metric="wall_ms"),
        Row("ember plugins list, 100 more distributions (ms)", "list", ("list", "{}"), None, 100.0, metric="wall_ms"),
    ]
    return rows


# ------------------------------------------------------------------ running
def run_workloads(jobs: list[Job], workdir: Path) -> dict[Job, dict[str, float]]:
    """Run ``jobs`` in one fresh process."""
    payload = [[framework, json.loads(options)] for framework, options in jobs]
    env = {**ENV, "EMBER_DISABLE_PLUGIN_AUTOLOAD": "1"}
    command = [sys.executable, str(HERE / "workload.py"), json.dumps(payload)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=workdir, env=env, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{[j[0] for j in jobs]} failed:\n{done.stderr[-3000:]}")
    return dict(zip(jobs, json.loads(done.stdout.strip().splitlines()[-1])))


IMPORT = "import time; s = time.perf_counter(); import ember; print((time.perf_counter() - s) * 1e3)"


def time_imports(count: int) -> list[float]:
    command = [sys.executable, "-c", IMPORT]
    return [
        float(subprocess.run(command, capture_output=True, text=True, env=ENV, check=True).stdout) for _ in range(count)
    ]


def time_listing(count: int, site: Path) -> list[float]:
    env = {**ENV, "PYTHONPATH": str(site)}
    command = [str(Path(sys.executable).parent / "ember"), "plugins", "list"]
    times = []
    for _ in range(count):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def measure(rows: list[Row], rounds: int, workdir: Path, watch: MachineWatch) -> None:
    """Interleaved rounds: every group once per round, in a shuffled order, jobs shuffled inside each."""
    active = [row for row in rows if row.missing is None]
    groups: dict[str, set[Job]] = defaultdict(set)
    for row in active:
        groups[row.group].add(row.job)  # a parallel run has a group of its own: ember's "fsdp" re-runs the script
    site = workdir / "site100"
    if not site.exists():
        fake_site(site, 100)
    # once, unmeasured: write the bytecode caches that every later process reads, as an installed ember has them
    run_workloads(
        [job("ember", model="tiny", steps=20, optional="defaults"), job("raw", model="tiny", steps=20)], workdir
    )
    time_imports(1)
    time_listing(1, site)
    started = time.monotonic()
    for number in range(rounds):
        shuffle = random.Random(number)
        order = sorted(groups)
        shuffle.shuffle(order)
        found: dict[Job, dict[str, float]] = {}
        for group in order:
            watch.sample()
            if group == "import":
                found[("import", "{}")] = {"wall_ms": statistics.median(time_imports(3))}
            elif group == "list":
                found[("list", "{}")] = {"wall_ms": statistics.median(time_listing(3, site))}
            else:
                jobs = sorted(groups[group])
                shuffle.shuffle(jobs)
                found.update(run_workloads(jobs, workdir))
        for row in active:
            result = found[row.job]
            if row.base is None:
                row.samples.append(result[row.metric])
                continue
            base = {key[len("raw_") :]: value for key, value in result.items() if key.startswith("raw_")}
            row.samples.append(result[row.metric] - base[row.metric])
            row.base_samples.append(base[row.metric])
            row.wall.append(result["wall_us"] - base["wall_us"])
            row.base_wall.append(base["wall_us"])
        elapsed = time.monotonic() - started
        print(
            f"  round {number + 1}/{rounds} done after {elapsed:.0f} s, load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )


# ------------------------------------------------------------------ reports
def report(rows: list[Row], busy: bool, baseline: dict[str, list[float]] | None = None) -> list[Row]:
    """Print the budget table; return the rows whose budget was missed with confidence.

    With a baseline (an earlier run's ``--save``), each row also shows the change of its median own
    cost, and a row with ``same_as`` is MISSED when it is slower than that baseline row with confidence.
    """
    print(
        f"\n{'configuration':52} {'raw':>8} {'own':>8} {'95% bounds':>17} {'wall own':>9} {'x raw':>6} "
        f"{'budget':>7}  verdict"
    )
    missed = []
    for row in rows:
        if row.missing is not None:
            print(f"{row.name:52} {row.missing}")
            continue
        estimate = Estimate(row.samples)
        bounds = estimate.bounds
        spread = f"{bounds[0]:7.1f} .. {bounds[1]:7.1f}" if bounds else ""
        if row.base is None:
            budget = f"{row.budget:5.0f}ms" if row.budget else ""
            judged = verdict(estimate, row.budget, busy) if row.budget else ""
            print(f"{row.name:52} {'':>8} {estimate.median:8.1f} {spread:>17} {'':>9} {'':>6} {budget:>7}  {judged}")
        else:
            raw = statistics.median(row.base_samples)
            scale = 1e-3 if raw > 1e5 else 1.0  # checkpoints: ms
            ratio = 1 + estimate.median / raw
            budget, judged = "", ""
            if row.budget:
                budget = f"{row.budget:.2f}x"
                judged = verdict(estimate, (row.budget - 1) * raw, busy)
            if bounds:
                spread = f"{bounds[0] * scale:7.1f} .. {bounds[1] * scale:7.1f}"
            print(
                f"{row.name:52} {raw * scale:8.1f} {estimate.median * scale:8.1f} {spread:>17} "
                f"{statistics.median(row.wall) * scale:9.1f} {ratio:6.3f} {budget:>7}  {judged}"
            )
        if baseline is not None and not busy and (row.same_as or row.name) in baseline:
            old = Estimate(baseline[row.same_as or row.name])
            change = f"{estimate.median - old.median:+.1f}"
            if row.same_as and slower(estimate, old):
                judged = "MISSED"
                print(f"{'':52} slower than {row.same_as!r} in the baseline run ({change})")
            else:
                print(f"{'':52} against the baseline run: {change}")
        if judged == "MISSED":
            missed.append(row)
    return missed


def scaling_report(callbacks: list[Row], metrics: list[Row]) -> None:
    print("\nscaling of the own cost (CPU µs per step, median over rounds)")
    for rows, unit, per in ((callbacks, "callback-hook", len(STEP_HOOKS)), (metrics, "metric", 1)):
        counts = [float(row.name.split()[0]) for row in rows]
        costs = [statistics.median(row.samples) for row in rows]
        print("  " + "   ".join(f"{row.name}: {cost:7.1f}" for row, cost in zip(rows, costs)))
        slope, intercept, worst = linear_fit(counts, costs)
        print(
            f"  linear fit: {slope / per:.3f} µs per {unit} ({slope:.2f} µs per {unit.split('-')[0]} and step), "
            f"intercept {intercept:.1f} µs, largest deviation from the line {worst:.1f} µs"
        )


def dispatch_table() -> None:
    """Cost of calling one hook as the training loop does, with 0, 1, 10 and 50 implementations."""
    code = r"""
import timeit, ember
from ember.core.pluginmanager import PluginManager

class Noop(ember.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        pass

for count in (0, 1, 10, 50):
    manager = PluginManager()
    for _ in range(count):
        manager.register(Noop())
    callers = manager.callers()
    def call():
        caller = callers.get("on_train_batch_start")
        if caller is not None:
            caller(trainer=None, pl_module=None, batch=None, batch_idx=0)
    print(count, min(timeit.repeat(call, number=20000, repeat=5)) / 20000 * 1e6)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    print("\nhook dispatch, one call as the training loop makes it: implementations -> µs per call")
    print("  " + "   ".join(f"{n}: {float(us):.3f}" for n, us in (line.split() for line in done.stdout.splitlines())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 rounds of shorter runs (about 5 minutes)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a budget is missed, 2 if the machine is busy")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 8, --quick 5; verdicts need 5)")
    parser.add_argument("--save", type=Path, help="write each row's per-round own cost to this JSON file")
    parser.add_argument("--baseline", type=Path, help="compare with a file an earlier run wrote with --save")
    parser.add_argument("--no-lightning", action="store_true", help="skip pytorch-lightning even if installed")
    arguments = parser.parse_args()
    steps = {"tiny": 1000, "mid": 30, "ddp": 600} if arguments.quick else {"tiny": 2000, "mid": 60, "ddp": 1200}
    rounds = arguments.rounds or (5 if arguments.quick else 8)  # 8: bounds from the 2nd-ranked rounds, not the extremes
    with_lightning = not arguments.no_lightning and lightning_missing() is None
    rows = training_rows(steps, with_lightning) + system_rows(steps)
    callbacks, metrics = scaling_rows(steps)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, one thread "
        f"per run, {rounds} rounds; lightning: {'measured' if with_lightning else lightning_missing()}",
        flush=True,
    )
    watch = MachineWatch()
    with tempfile.TemporaryDirectory(prefix="ember-bench-") as folder:
        measure(rows + callbacks + metrics, rounds, Path(folder), watch)
    floor = next(row for row in rows if row.name.startswith("raw loop against itself"))
    reasons = watch.busy_reasons(floor.samples, floor.base_wall, floor.base_samples)
    print("\nown = the configuration's time per step minus the raw loop's in the same round (µs; CPU time)")
    baseline = json.loads(arguments.baseline.read_text()) if arguments.baseline else None
    missed = report(rows, busy=bool(reasons), baseline=baseline)
    if arguments.save:
        arguments.save.write_text(
            json.dumps({row.name: row.samples for row in rows + callbacks + metrics if row.samples})
        )
    scaling_report(callbacks, metrics)
    dispatch_table()
    if reasons:
        print("\nbusy: no verdict (" + "; ".join(reasons) + "); rerun on an idle machine")
    elif missed:
        print("\nMISSED with 95% confidence: " + ", ".join(row.name for row in missed))
    else:
        print("\nall budgets met (or within noise of them)")
    if arguments.check:
        sys.exit(2 if reasons else 1 if missed else 0)


if __name__ == "__main__":
    main()
