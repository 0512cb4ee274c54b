"""What ``ember fit`` adds to a run's start-up: the same one-step fit from a config and from a Python script.

Target (issue 14, item 7): ``ember fit --config run.yaml`` takes at most 300 ms longer than
``python train.py`` building the same Trainer and model by hand. Each run is a fresh process
(imports included) training one step of ember.testing's TinyModel. A round runs the script,
``ember fit`` and ``ember --help`` (which must not import torch) once each, in a shuffled order;
the cost of ``ember fit`` in a round is its time minus the script's in that round. The bench
reports the median of those differences over the rounds with distribution-free 95% bounds
(bench/stats.py) in three measures: wall time (what the budget is on), CPU time (user + system,
all threads), and wall time less the main thread's wait for a CPU (Linux's schedstat: the time
it was runnable but other processes had the cores), which is what the wall time would be on an
idle machine. Each command's wall time splits into CPU, "queued" (runnable, no free core) and
"blocked" (the main thread waited on something: a subprocess, a sleep, a lock, the disk); on a
healthy run "blocked" is near zero. Processes run as bench/run.py's do: one thread, bytecode
cached as users have it. On a busy machine the plain wall-time verdict is withheld.
Run: ``python bench/cli_startup.py [--rounds N]`` (at least 5 for a verdict).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from stats import ENV, Estimate, MachineWatch, verdict

BUDGET_MS = 300.0

TRAINER = dict(
    max_steps=1,
    limit_val_batches=0,
    num_sanity_val_steps=0,
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)

SCRIPT = f"""
import ember
from ember.testing.models import TinyModel

ember.seed_everything(0, workers=True)
model = TinyModel()
trainer = ember.Trainer(default_root_dir="script", **{TRAINER!r})
trainer.fit(model)
"""

CONFIG = (
    "seed_everything: 0\ntrainer:\n  default_root_dir: cli\n"
    + "".join(
        f"  {key}: {str(value).lower() if isinstance(value, bool) else value}\n" for key, value in TRAINER.items()
    )
    + "model: ember.testing.models.TinyModel\n"
)


@dataclass
class Sample:
    """One run, in milliseconds."""

    wall: float
    cpu: float  # user + system, every thread
    on_core: float  # the main thread running (Linux's schedstat; the CPU time where it is missing)
    queued: float  # the main thread runnable but waiting for a core (0 where schedstat is missing)

    @property
    def blocked(self) -> float:
        """Wall time in which the main thread neither ran nor waited for a core: it waited on something."""
        return self.wall - self.on_core - self.queued

    @property
    def idle_wall(self) -> float:
        """The wall time less the wait for a core: what an idle machine would show."""
        return self.wall - self.queued


def timed(command: list[str], folder: str) -> Sample:
    """Run ``command`` once; its schedstat is read after it exits and before it is reaped."""
    with tempfile.TemporaryFile() as output:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=folder, env=ENV, stdout=output, stderr=output)
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        wall = time.perf_counter() - start
        try:
            with open(f"/proc/{process.pid}/schedstat") as handle:
                on_core, queued = (int(field) / 1e9 for field in handle.read().split()[:2])
        except (OSError, ValueError):
            on_core, queued = -1.0, 0.0
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            output.seek(0)
            raise SystemExit(f"{' '.join(command)} failed:\n{output.read().decode(errors='replace')}")
    cpu = usage.ru_utime + usage.ru_stime
    return Sample(wall * 1e3, cpu * 1e3, (on_core if on_core >= 0 else cpu) * 1e3, queued * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", "--runs", type=int, default=7, help="rounds (default 7; 5 or more for a verdict)")
    rounds = parser.parse_args().rounds
    watch = MachineWatch()
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "train.py").write_text(SCRIPT)
        Path(folder, "run.yaml").write_text(CONFIG)
        commands = {
            "script": [sys.executable, "train.py"],
            "ember fit": [sys.executable, "-m", "ember", "fit", "--config", "run.yaml"],
            "ember --help": [sys.executable, "-m", "ember", "--help"],
        }
        for command in commands.values():  # unmeasured: the file cache and the bytecode caches
            timed(command, folder)
        times: dict[str, list[Sample]] = {name: [] for name in commands}
        for number in range(rounds):
            order = list(commands)
            random.Random(number).shuffle(order)
            for name in order:
                times[name].append(timed(commands[name], folder))
            watch.sample()
    print(
        f"{rounds} rounds, {os.cpu_count()} cores, load average {watch.load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after; one thread per run\n"
    )
    print(f"{'median ms':14} {'wall':>7} {'CPU':>7} {'queued':>7} {'blocked':>7}")
    for name, samples in times.items():
        columns = [statistics.median(getattr(s, key) for s in samples) for key in ("wall", "cpu", "queued", "blocked")]
        print(f"{name:14} " + " ".join(f"{value:7.0f}" for value in columns))
    reasons = watch.busy_reasons([], [], [])
    print(f"\nember fit minus the script, per round (budget {BUDGET_MS:.0f} ms):")
    for label, key, busy in (
        ("wall", "wall", bool(reasons)),
        ("wall less queued", "idle_wall", False),
        ("CPU", "cpu", False),
    ):
        pairs = zip(times["ember fit"], times["script"])
        estimate = Estimate([getattr(fit, key) - getattr(script, key) for fit, script in pairs])
        bounds = estimate.bounds
        spread = f"95% bounds {bounds[0]:+6.0f} .. {bounds[1]:+6.0f}" if bounds else "too few rounds for bounds"
        print(f"  {label:16} median {estimate.median:+6.0f} ms  {spread}  {verdict(estimate, BUDGET_MS, busy)}")
    if reasons:
        print(f"busy: no plain wall-time verdict ({'; '.join(reasons)}); the other two lines stand in")


if __name__ == "__main__":
    main()
