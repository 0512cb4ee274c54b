"""ember's overhead against a raw PyTorch loop and, when installed, pytorch-lightning, measured in one run.

    python bench/run.py              # everything (a few minutes)
    python bench/run.py --quick      # fewer steps and repeats

Each training configuration runs in a fresh process on one thread; the
figure is the median time per training step (timestamps taken at the start
of every batch), the best median over the repeats, and its ratio to the raw
loop. Then: hook dispatch cost, ``import ember``, Trainer() to the first step,
the plugin profiler's overhead, and (bench/plugins_list.py) ``ember plugins
list`` and discovery among many installed distributions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (name, framework, options) — options are read by bench/workload.py.
CONFIGS = [
    ("raw loop", "raw", {}),
    ("ember: everything optional off", "ember", {"optional": "off"}),
    ("ember: defaults", "ember", {"optional": "defaults"}),
    ("ember: optional off but the TQDM progress bar", "ember", {"optional": "off", "bar": True}),
    ("ember: 10 callbacks overriding every hook", "ember", {"optional": "off", "callbacks": 10}),
    ("ember: 10 plain hookimpl plugins", "ember", {"optional": "off", "plugins": 10}),
    ("ember: self.log(prog_bar=True) every step", "ember", {"optional": "defaults", "log": True}),
    ("ember: defaults + profiler='plugins'", "ember", {"optional": "defaults", "profiler": True}),
    ("lightning: everything optional off", "lightning", {"optional": "off"}),
    ("lightning: defaults", "lightning", {"optional": "defaults"}),
    ("lightning: 10 callbacks overriding every hook", "lightning", {"optional": "off", "callbacks": 10}),
    ("lightning: self.log(prog_bar=True) every step", "lightning", {"optional": "defaults", "log": True}),
]

MODELS = {
    "tiny MLP 32-32-1, batch 32": {"model": "tiny"},
    "mid-size MLP 1024x3, batch 256": {"model": "mid"},
}


def lightning_installed() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import pytorch_lightning"], capture_output=True)
    return probe.returncode == 0


def run_workload(framework: str, options: dict, steps: int, workdir: Path) -> dict:
    command = [sys.executable, str(HERE / "workload.py"), framework, json.dumps({**options, "steps": steps})]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "EMBER_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run(command, capture_output=True, text=True, cwd=workdir, env=env, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{framework} {options} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def training_table(steps: dict[str, int], repeats: int, with_lightning: bool, workdir: Path) -> list[str]:
    lines = []
    for model_name, model_options in MODELS.items():
        count = steps[model_options["model"]]
        lines.append(f"\n{model_name}, {count} steps, median of per-step times, best of {repeats} runs")
        lines.append(f"{'configuration':52} {'us/step':>9} {'x raw':>7}")
        best: dict[str, float] = {}
        for _ in range(repeats):  # interleaved, so slow phases of the machine hit every configuration alike
            for name, framework, options in CONFIGS:
                if framework == "lightning" and not with_lightning:
                    continue
                result = run_workload(framework, {**options, **model_options}, count, workdir)
                best[name] = min(best.get(name, float("inf")), result["median_step_us"])
        raw = best["raw loop"]
        for name, _, _ in CONFIGS:
            if name in best:
                lines.append(f"{name:52} {best[name]:9.1f} {best[name] / raw:7.2f}")
        print("\n".join(lines[-len(best) - 2 :]), flush=True)
    return lines


def dispatch_table() -> list[str]:
    """Cost of calling one hook as the training loop does, with 0, 1, 10 and 50 implementations."""
    code = r"""
import timeit, ember
from ember.core.pluginmanager import PluginManager

class Noop(ember.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        pass

results = {}
for count in (0, 1, 10, 50):
    manager = PluginManager()
    for _ in range(count):
        manager.register(Noop())
    callers = manager.callers()
    def call():
        caller = callers.get("on_train_batch_start")
        if caller is not None:
            caller(trainer=None, pl_module=None, batch=None, batch_idx=0)
    number = 20000
    results[count] = min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6
print(results)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    results = eval(done.stdout.strip())  # noqa: S307 - our own subprocess's dict
    lines = ["\nhook dispatch (one call, as the training loop makes it)", f"{'implementations':20} {'us/call':>9}"]
    lines += [f"{count:<20} {cost:9.3f}" for count, cost in results.items()]
    lines.append("(0 implementations: the hook is not called at all; the cost is one dict lookup)")
    print("\n".join(lines), flush=True)
    return lines


def startup_table(repeats: int, workdir: Path) -> list[str]:
    def best(code: str) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        return min(times) * 1e3

    python = best("pass")
    torch_only = best("import torch")
    ember_only = best("import ember")
    after_torch = (
        "import time, torch; start = time.perf_counter(); import ember; ember.Trainer; ember.Module; "
        "print((time.perf_counter() - start) * 1e3)"
    )
    ember_torch = min(
        float(subprocess.run([sys.executable, "-c", after_torch], check=True, capture_output=True, text=True).stdout)
        for _ in range(repeats)
    )
    first = run_workload("ember", {"optional": "defaults", "model": "tiny"}, 50, workdir)["first_step_ms"]
    lines = [
        f"\nstart-up (best of {repeats} process starts)",
        f"python alone                                     {python:8.1f} ms",
        f"import torch                                     {torch_only:8.1f} ms",
        f"import ember (does not import torch)             {ember_only:8.1f} ms",
        f"import ember, Trainer and Module after torch     {ember_torch:8.1f} ms  (what ember adds to import torch)",
        f"Trainer(...) to the first training step          {first:8.1f} ms  (defaults, tiny MLP)",
    ]
    print("\n".join(lines), flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--no-lightning", action="store_true", help="skip pytorch-lightning even if installed")
    arguments = parser.parse_args()
    steps = {"tiny": 500, "mid": 40} if arguments.quick else {"tiny": 2000, "mid": 150}
    repeats = 1 if arguments.quick else 3
    with_lightning = not arguments.no_lightning and lightning_installed()
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"ember-bench-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, one thread per run; lightning: "
        f"{'measured' if with_lightning else 'not installed (pip install -e .[bench])'}",
        flush=True,
    )
    training_table(steps, repeats, with_lightning, workdir)
    dispatch_table()
    startup_table(5, workdir)
    print("\nplugin listing and discovery (bench/plugins_list.py)", flush=True)
    subprocess.run(
        [sys.executable, str(HERE / "plugins_list.py"), "--runs", "3" if arguments.quick else "5"], check=False
    )


if __name__ == "__main__":
    main()
