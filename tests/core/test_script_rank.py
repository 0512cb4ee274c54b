"""How a rank that ember starts by running the script again lives and ends (real processes)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ember.core.script_rank import MODULE

#: A helper module whose object writes a file only when the interpreter's final teardown destroys it.
HELPER = """
class Marker:
    def __init__(self, path):
        self.path = path

    def __del__(self, open=open):  # bound now: the teardown may have cleared builtins by then
        with open(self.path, "w") as handle:
            handle.write("torn down")


marker = None
"""

SCRIPT = """
import atexit, sys, threading, time
import helper

folder = sys.argv[1]
helper.marker = helper.Marker(f"{folder}/teardown.txt")
unclosed = open(f"{folder}/unclosed.txt", "w")
unclosed.write("buffered, never closed")
atexit.register(lambda: open(f"{folder}/atexit.txt", "w").write("ran"))


def late():
    time.sleep(0.3)
    open(f"{folder}/thread.txt", "w").write("joined")


if __name__ == "__main__":
    with open(f"{folder}/seen.txt", "w") as seen:
        seen.write(repr((sys.argv[2:], sys.path[0], __file__, "torch" in sys.modules)))
    threading.Thread(target=late).start()
    outcome = sys.argv[2] if len(sys.argv) > 2 else ""
    if outcome == "raise":
        raise ValueError("the script failed")
    if outcome:
        sys.exit(int(outcome) if outcome.isdigit() else outcome)
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def run(folder: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", MODULE, *args], capture_output=True, text=True, timeout=60, cwd=cwd or folder
    )


@pytest.fixture
def script(tmp_path: Path) -> Path:
    write(tmp_path, "helper.py", HELPER)
    return write(tmp_path, "train.py", SCRIPT)


def test_a_finished_script_ends_as_python_would_but_without_the_final_teardown(script: Path, tmp_path: Path) -> None:
    done = run(tmp_path, str(script), str(tmp_path), cwd=Path.home())
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "thread.txt").read_text() == "joined"  # non-daemon threads are waited for
    assert (tmp_path / "atexit.txt").read_text() == "ran"
    assert (tmp_path / "unclosed.txt").read_text() == "buffered, never closed"  # the script's globals released
    assert not (tmp_path / "teardown.txt").exists()  # the interpreter's teardown, where gloo can abort, is skipped
    # the script sees what it would when run directly, and torch is not imported before it
    assert (tmp_path / "seen.txt").read_text() == repr(([], str(tmp_path), str(script), False))


def test_the_same_script_run_directly_reaches_the_teardown(script: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "teardown.txt").read_text() == "torn down"  # what the marker detects does happen normally


@pytest.mark.parametrize(("outcome", "code"), [("3", 3), ("no data", 1), ("raise", 1)])
def test_the_exit_code_is_the_one_python_would_give(script: Path, tmp_path: Path, outcome: str, code: int) -> None:
    done = run(tmp_path, str(script), str(tmp_path), outcome)
    assert done.returncode == code
    assert (tmp_path / "thread.txt").exists() and (tmp_path / "atexit.txt").exists()
    if outcome == "no data":
        assert done.stderr.strip() == "no data"
    if outcome == "raise":
        line = SCRIPT.splitlines().index('        raise ValueError("the script failed")') + 1
        assert done.stderr.splitlines()[:2] == [
            "Traceback (most recent call last):",
            f'  File "{script}", line {line}, in <module>',
        ]
        assert done.stderr.rstrip().endswith("ValueError: the script failed")
        assert MODULE.replace(".", "/") not in done.stderr  # the traceback starts at the script


def test_a_module_runs_as_python_m_would_run_it(tmp_path: Path) -> None:
    package = tmp_path / "project"
    package.mkdir()
    write(package, "__init__.py", "")
    write(package, "__main__.py", SCRIPT.replace("import helper", "from project import helper"))
    write(package, "helper.py", HELPER)
    done = run(tmp_path, "-m", "project", str(tmp_path), "7", cwd=tmp_path)
    assert done.returncode == 7, done.stderr
    seen = ast.literal_eval((tmp_path / "seen.txt").read_text())
    assert seen == (["7"], str(tmp_path), str(package / "__main__.py"), False)
    assert not (tmp_path / "teardown.txt").exists()


def test_a_module_that_does_not_exist_is_named(tmp_path: Path) -> None:
    done = run(tmp_path, "-m", "no_such_project")
    assert done.returncode == 1
    assert "no_such_project" in done.stderr


@pytest.mark.slow
def test_ranks_that_ddp_starts_run_through_it(tmp_path: Path) -> None:
    """Rank 1, started by strategy='ddp', skips the teardown; its exit code reaches rank 0's error."""
    write(tmp_path, "helper.py", HELPER)
    script = write(
        tmp_path,
        "ddp_train.py",
        """
        import os, sys
        import helper
        import ember
        from ember.testing import TinyModel

        if __name__ == "__main__":
            rank = os.environ.get("RANK", "0")
            helper.marker = helper.Marker(f"{sys.argv[1]}/teardown_{rank}.txt")
            trainer = ember.Trainer(
                strategy="ddp", accelerator="cpu", devices=2, max_epochs=1, logger=False,
                enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            )
            trainer.fit(TinyModel())
            if trainer.global_rank == 1 and len(sys.argv) > 2:
                sys.exit(int(sys.argv[2]))
        """,
    )
    env = {key: value for key, value in os.environ.items() if key not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    command = [sys.executable, str(script), str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "teardown_0.txt").exists()  # rank 0 is the user's own process
    assert not (tmp_path / "teardown_1.txt").exists()
    failed = subprocess.run([*command, "3"], capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env)
    assert failed.returncode == 1
    assert "ranks exited with errors (rank, exit code): [(1, 3)]" in failed.stderr
