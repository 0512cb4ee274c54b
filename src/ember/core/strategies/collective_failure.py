"""When a collective fails: which one, and which ranks did not arrive.

torch's error after a timeout ("Timed out waiting 1800000ms for recv operation")
or a lost peer ("Connection closed by peer") names neither. After one, every
rank that failed notes where it was waiting in the store the process group
rendezvoused through, then reads the others' notes for a moment (a quarter of
the timeout, at most 5 s): a rank with no note did not arrive, a rank with
another collective's note was waiting there instead. The store, rather than a
``monitored_barrier`` on a spare group: it is served by rank 0's process (or
torchrun's agent) in a thread of its own, so it answers while other ranks are
stuck or gone; every rank can read it, not only rank 0; a rank stuck in a
*different* collective shows up as such instead of passing a spare barrier
once its own timeout fires; and it costs nothing until a collective has
failed: no extra group at setup, nothing per step.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ember.errors import CollectiveTimeoutError

#: torch's words for "a peer did not answer": a timeout, or a connection the other side closed.
_NO_ANSWER = re.compile(
    r"timed out|timeout|failed to pass monitoredBarrier|connection (?:closed|reset|refused)|broken pipe",
    re.IGNORECASE,
)
_TIMED_OUT = re.compile(r"timed out|timeout|failed to pass monitoredBarrier", re.IGNORECASE)
_KEY = "ember/collective-failures"

#: The longest a failed rank waits for the others' notes.
MAX_GRACE_SECONDS = 5.0


def is_communication_failure(error: BaseException) -> bool:
    """Whether torch raised ``error`` because another rank did not answer (not a bad argument or a user error)."""
    import torch.distributed as dist

    return isinstance(error, dist.DistNetworkError) or bool(_NO_ANSWER.search(str(error)))


def collective_error(
    what: str,
    rank: int,
    world_size: int,
    timeout: timedelta,
    error: BaseException,
    exited: Callable[[], dict[int, int]] = dict,
) -> CollectiveTimeoutError:
    """The error to raise instead of ``error``, after asking the other ranks where they were.

    :param what: the collective, as the message names it ("barrier 'name'", "trainer.strategy.reduce" ...).
    :param exited: exit codes of ranks known to have ended, by rank (the ranks this process launched).
    """
    timed_out = bool(_TIMED_OUT.search(str(error)))
    head = f"rank {rank} waited {timeout} at {what}" if timed_out else f"rank {rank} lost other ranks at {what}"
    grace = min(MAX_GRACE_SECONDS, timeout.total_seconds() / 4)
    try:
        notes, gone = _read_notes(what, rank, world_size, grace, exited)
    except Exception as failure:  # noqa: BLE001 - the store went with the rank that hosted it
        who = f"which ranks did not arrive is unknown (the rendezvous store did not answer: {failure})"
    else:
        who = _who(what, rank, world_size, notes, gone)
    if timed_out:
        hint = (
            "every rank must reach the same collectives in the same order (a barrier or reduce under "
            "`if trainer.is_global_zero:` hangs the others). Set the limit with DDPStrategy(timeout=...) "
            "or EMBER_DDP_TIMEOUT."
        )
    else:
        hint = "a rank that exited or was killed closed its connections; its own output says why."
    return CollectiveTimeoutError(f"{head}: {who}; {hint} torch: {error}")


def _read_notes(
    what: str, rank: int, world_size: int, grace: float, exited: Callable[[], dict[int, int]]
) -> tuple[dict[int, str], dict[int, int]]:
    """Note where this rank waited; the other ranks' notes and exits after ``grace`` (sooner when all are in)."""
    import torch.distributed as dist
    from torch.distributed.distributed_c10d import _get_default_store

    store: Any = dist.PrefixStore(_KEY, _get_default_store())  # append is missing from the stubs
    store.append("notes", f"{rank}\t{' '.join(what.split())}\n")
    deadline = time.monotonic() + grace
    while True:
        notes = dict(line.split("\t", 1) for line in store.get("notes").decode().splitlines() if "\t" in line)
        found = {int(r): place for r, place in notes.items() if r.isdigit()}
        gone = exited()
        waiting = [r for r in range(world_size) if r not in found and r not in gone]
        if not waiting or time.monotonic() >= deadline:
            return found, gone
        time.sleep(0.05)


def _who(what: str, rank: int, world_size: int, notes: dict[int, str], gone: dict[int, int]) -> str:
    """ "ranks that did not arrive: [1]; rank 1 exited with code 1" and the like."""
    here = " ".join(what.split())
    missing = [r for r in range(world_size) if r != rank and notes.get(r) != here]
    if not missing:
        return "every rank reported waiting here"
    details = []
    for r in missing:
        if r in notes:
            details.append(f"rank {r} was waiting at {notes[r]} instead")
        elif r in gone:
            details.append(f"rank {r} exited with code {gone[r]}")
    return "; ".join([f"ranks that did not arrive: {missing}", *details])
