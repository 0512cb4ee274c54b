"""``ddp_spawn``: ranks 1..N-1 forked from the running process, so nothing needs pickling.

The forked rank runs the same Trainer call as rank 0 and exits when it ends;
rank 0 stays in the calling process, so the caller's model holds the trained
weights afterwards, as with Lightning's ddp_spawn.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any


class ForkedRank:
    """A forked rank behind the subset of ``subprocess.Popen`` the launcher uses."""

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self.process = process

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self, timeout: float | None = None) -> int | None:
        self.process.join(timeout)
        if self.process.exitcode is None:
            import subprocess

            raise subprocess.TimeoutExpired("forked rank", timeout or 0)
        return self.process.exitcode

    def terminate(self) -> None:
        self.process.terminate()

    def kill(self) -> None:
        self.process.kill()


def fork_rank(
    env: dict[str, str], strategy: Any, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> ForkedRank:
    """Fork a process that sets ``env`` and runs ``function``; it exits with 0, or 1 after printing the error."""
    process = multiprocessing.get_context("fork").Process(
        target=_run_rank, args=(env, strategy, function, args, kwargs), daemon=False
    )
    process.start()
    return ForkedRank(process)


def _run_rank(
    env: dict[str, str], strategy: Any, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    os.environ.clear()
    os.environ.update(env)
    strategy._children = []  # the siblings forked before this one belong to rank 0, not to this rank
    code = 0
    try:
        function(*args, **kwargs)
    except BaseException:  # noqa: BLE001 - the rank reports and exits non-zero, whatever it was
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
