"""What ``ember fit`` adds to a run's start-up: the same one-step fit from a config and from a Python script.

Target (issue 14, item 7): ``ember fit --config run.yaml`` takes at most 300 ms longer than
``python train.py`` building the same Trainer and model by hand. Each run is a fresh process
(imports included) training one step of ember.testing's TinyModel; the two are run alternately
and the medians compared, in wall time and in CPU time (user + system, steadier on a busy
machine). ``ember --help`` is timed too (it must not import torch).
Run: ``python bench/cli_startup.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def timed(command: list[str], folder: str) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``command``."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(command, cwd=folder, check=True, capture_output=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (default 5)")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "train.py").write_text(SCRIPT)
        Path(folder, "run.yaml").write_text(CONFIG)
        script = [sys.executable, "train.py"]
        cli = [sys.executable, "-m", "ember", "fit", "--config", "run.yaml"]
        helps = [sys.executable, "-m", "ember", "--help"]
        timed(script, folder), timed(cli, folder)  # warm the file cache
        times: dict[str, list[tuple[float, float]]] = {"script": [], "ember fit": [], "ember --help": []}
        for _ in range(runs):
            times["script"].append(timed(script, folder))
            times["ember fit"].append(timed(cli, folder))
            times["ember --help"].append(timed(helps, folder))
    wall = {name: statistics.median(w for w, _ in values) for name, values in times.items()}
    cpu = {name: statistics.median(c for _, c in values) for name, values in times.items()}
    for name in times:
        print(f"{name:13} median wall {wall[name] * 1000:7.0f} ms  cpu {cpu[name] * 1000:7.0f} ms  ({runs} runs)")
    for label, measure in (("wall", wall), ("cpu", cpu)):
        overhead = measure["ember fit"] - measure["script"]
        verdict = "ok" if overhead <= 0.300 else "OVER the 300 ms target"
        ratio = measure["ember fit"] / measure["script"]
        print(f"ember fit adds {overhead * 1000:.0f} ms {label} over the script ({ratio:.2f}x): {verdict}")


if __name__ == "__main__":
    main()
