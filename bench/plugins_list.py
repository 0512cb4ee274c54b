"""How fast plugins are found and listed: ``ember plugins list`` with the example installed, and discovery
among 1,000 installed distributions.

Targets (issue 5 and the performance brief): ``ember plugins list`` under 150 ms with ember's entry points
and examples/plugins/ember-example installed, torch never imported; discovery with 1,000 installed
distributions under 250 ms. Run: ``python bench/plugins_list.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stats import ENV

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "plugins" / "ember-example"

LIST_AND_CHECK = (
    "import sys, time\n"
    "start = time.perf_counter()\n"
    "from ember.cli import main\n"
    "import contextlib, io\n"
    "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
    "    main(['plugins', 'list', '--json'])\n"
    "print('torch imported:', 'torch' in sys.modules, '| example listed:', 'ember-example' in out.getvalue())\n"
)

DISCOVER = (
    "import sys, time\n"
    "start = time.perf_counter()\n"
    "from ember.core import discovery\n"
    "imported = time.perf_counter()\n"
    "eps = discovery.installed()\n"
    "scanned = time.perf_counter()\n"
    "discovery.survey()\n"
    "surveyed = time.perf_counter()\n"
    "import importlib.metadata\n"
    "importlib.metadata.entry_points(group='ember.plugins')\n"
    "stdlib = time.perf_counter() - surveyed\n"
    "print(f'{(scanned - imported) * 1000:.1f} {(surveyed - start) * 1000:.1f} {stdlib * 1000:.1f} {len(eps)}')\n"
)


SITES = (1, 100, 1000)


def best_wall(command: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """The fastest of ``runs`` runs of a whole process, in milliseconds: wall time and CPU time.

    On a busy machine the CPU time (user + system) is the steadier of the two.
    """
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return min(walls) * 1000, min(cpus) * 1000


def fake_site(folder: Path, count: int) -> None:
    """``count`` installed distributions' metadata, a third of them with (other) entry points."""
    for i in range(count):
        info = folder / f"pkg{i}-1.{i}.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: pkg{i}\nVersion: 1.{i}.0\n\n" + "text\n" * 100)
        (info / "RECORD").write_text("")
        if i % 3 == 0:
            (info / "entry_points.txt").write_text(f"[console_scripts]\npkg{i} = pkg{i}.cli:main\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = shutil.copytree(EXAMPLE, root / "ember-example", ignore=shutil.ignore_patterns("build", "*.egg-info"))
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target"]
        subprocess.run([*pip, str(root / "site"), str(source)], check=True)
        for count in SITES:
            fake_site(root / f"many{count}", count)
        env = dict(ENV)
        env["PYTHONPATH"] = str(root / "site")
        env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")  # bytecode cached as users have it, outside the tree
        ember = str(Path(sys.executable).parent / "ember")

        bare = best_wall([sys.executable, "-c", "pass"], env, runs)
        importing = best_wall([sys.executable, "-c", "import ember.cli"], env, runs)
        listing = best_wall([ember, "plugins", "list", "--json"], env, runs)
        check = subprocess.run([sys.executable, "-c", LIST_AND_CHECK], env=env, capture_output=True, text=True)
        print("best of", runs, "runs      wall ms   CPU ms")
        print(f"python -c pass:              {bare[0]:7.1f}  {bare[1]:7.1f}")
        print(f"python -c 'import ember.cli':{importing[0]:7.1f}  {importing[1]:7.1f}")
        print(
            f"ember plugins list --json:   {listing[0]:7.1f}  {listing[1]:7.1f}  (target 150 ms: {listing[0] / 150:.2f}x)"
        )
        print(f"  {check.stdout.strip()}")

        print("discovery with N more distributions installed (min of runs):")
        print(
            f"{'N':>6}  {'entry points':>12}  {'scan ms':>8}  {'import+scan+load+check ms':>26}  {'stdlib entry_points ms':>22}"
        )
        for count in SITES:
            env["PYTHONPATH"] = os.pathsep.join([str(root / f"many{count}"), str(root / "site")])
            samples = []
            for _ in range(runs):
                out = subprocess.run([sys.executable, "-c", DISCOVER], env=env, capture_output=True, text=True).stdout
                samples.append([float(x) for x in out.split()])
            scan, total, stdlib, found = (min(column) for column in zip(*samples))
            note = f"  (target 250 ms: {total / 250:.2f}x)" if count == 1000 else ""
            print(f"{count:>6}  {int(found):>12}  {scan:8.1f}  {total:26.1f}  {stdlib:22.1f}{note}")


if __name__ == "__main__":
    main()
