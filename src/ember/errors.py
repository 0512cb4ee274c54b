"""The exceptions and warnings ember raises on purpose.

Importing this module does not import torch.
"""

from __future__ import annotations


class MisconfigurationError(ValueError):
    """A flag, argument or return value has a value ember cannot accept."""


class PluginError(Exception):
    """A plugin cannot be registered or loaded: it names the plugin, its origin and the hook."""


class PluginWarning(UserWarning):
    """A plugin was left out; the message says which one and why."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or read back; the message names the file and the problem."""


class CollectiveTimeoutError(RuntimeError):
    """Not every rank reached a collective, within the timeout or at all (a rank exited).

    The message names the collective (a barrier, ``trainer.strategy.reduce``, DDP's gradient
    all-reduce in backward ...), the ranks that did not arrive and, where known, where they were
    waiting instead or how they exited; ember adds the hook and plugin that were running.
    """


class RankFailedError(RuntimeError):
    """Another rank of the run exited with an error, so this one stops too; names the rank and its exit code."""

    def __init__(self, rank: int, exit_code: int) -> None:
        self.rank, self.exit_code = rank, exit_code
        super().__init__(
            f"rank {rank} exited with code {exit_code} (its traceback is in its own output); stopping this rank too"
        )

    def __reduce__(self) -> tuple[type[RankFailedError], tuple[int, int]]:
        return RankFailedError, (self.rank, self.exit_code)


class EmberWarning(UserWarning):
    """Something ember worked around but the user should know about."""


class Preempted(Exception):
    """A signal (SIGTERM, SLURM's SIGUSR1, ``Trainer(requeue_signals=...)``) ended fit at a step boundary.

    on_exception receives it after the resume checkpoint is written; the process then exits with
    ``128 + signum`` (143 for SIGTERM). ``checkpoint`` is the resume checkpoint's path, or None
    without autoresume.
    """

    def __init__(self, signum: int, checkpoint: str | None = None) -> None:
        self.signum, self.checkpoint = int(signum), checkpoint
        where = f"; resume checkpoint: {checkpoint}" if checkpoint else ""
        super().__init__(f"fit was stopped by signal {self.signum} at a step boundary{where}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
