"""SpikeDetection: stop training when the loss spikes, and record which batches to skip on the rerun.

A sudden jump of the loss usually means a bad batch or weights it has just
spoiled; continuing wastes the run. As Lightning's callback does, it compares
each training loss with the running mean of the last ``window`` ones and, on
a spike, writes the current and the previous batch index to a JSON file and
raises :class:`TrainingSpikeException`. Its running statistics are checkpoint
state, so a resumed run judges spikes as the original would have.

Importing this module does not import torch.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ember.callback import Callback
from ember.errors import MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.module import Module
    from ember.core.trainer import Trainer

__all__ = ["SpikeDetection", "TrainingSpikeException"]


class TrainingSpikeException(RuntimeError):
    """Raised by :class:`SpikeDetection` when the training loss spiked in batch ``batch_idx``."""

    def __init__(self, batch_idx: int, *args: Any) -> None:
        super().__init__(f"Training spike detected in batch {batch_idx}", *args)
        self.batch_idx = batch_idx


class SpikeDetection(Callback):
    """Raise :class:`TrainingSpikeException` when the training loss spikes.

    :param mode: ``"min"`` if the loss should fall, ``"max"`` if it should rise: a value better than the
        previous one is never a spike.
    :param window: how many of the last losses the running mean covers.
    :param warmup: batches of each epoch (by ``batch_idx``) not checked; their losses still count.
    :param atol: a spike differs from the running mean by at least this much (None: no such test).
    :param rtol: a spike differs from the running mean by at least ``rtol * |mean|`` (None: no such test).
    :param exclude_batches_path: the JSON file (or the folder for ``skip_batches.json``) the bad batch
        indices go to; by default ``<default_root_dir>/skip_batches.json``.
    :param finite_only: True: a NaN or infinite loss is a spike. False: such losses are judged by the
        tolerances like any other (NaN never counts) and never enter the running mean.
    """

    def __init__(
        self,
        mode: str = "min",
        window: int = 10,
        warmup: int = 1,
        atol: float | None = None,
        rtol: float | None = 2.0,
        exclude_batches_path: str | os.PathLike[str] | None = None,
        finite_only: bool = True,
    ) -> None:
        if mode not in ("min", "max"):
            raise MisconfigurationError(f"SpikeDetection(mode={mode!r}): accepted are 'min' and 'max'")
        for name, value in (("window", window), ("warmup", warmup)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "window" else 0):
                floor = 1 if name == "window" else 0
                raise MisconfigurationError(f"SpikeDetection({name}={value!r}): accepted is an int >= {floor}")
        for name, tolerance in (("atol", atol), ("rtol", rtol)):
            if tolerance is not None and (isinstance(tolerance, bool) or not isinstance(tolerance, (int, float))):
                raise MisconfigurationError(f"SpikeDetection({name}={tolerance!r}): accepted is a number or None")
        self.mode = mode
        self.window = window
        self.warmup = warmup
        self.atol = atol
        self.rtol = rtol
        self.exclude_batches_path = exclude_batches_path
        self.finite_only = finite_only
        #: Batch indices found bad so far: for each spike, the previous batch and the spiking one.
        self.bad_batches: list[int] = []
        self.last_val = 0.0
        self._recent: deque[float] = deque(maxlen=window)

    @property
    def running_mean(self) -> float:
        """The mean of the last ``window`` losses that were not spikes (NaN before the first)."""
        return sum(self._recent) / len(self._recent) if self._recent else math.nan

    # ------------------------------------------------------------------ hooks
    def on_train_batch_end(self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = _loss_of(outputs)
        if loss is None:  # training_step returned None: the batch was skipped
            return
        if self.exclude_batches_path is None:
            self.exclude_batches_path = os.path.join(trainer.default_root_dir, "skip_batches.json")
        if not str(self.exclude_batches_path).endswith(".json"):
            self.exclude_batches_path = os.path.join(self.exclude_batches_path, "skip_batches.json")
        strategy = trainer.strategy
        # each process judges its own loss; a spike anywhere stops every process
        if strategy.reduce_boolean_decision(batch_idx >= self.warmup and self._is_spike(loss), all=False):
            self._handle_spike(trainer, batch_idx)
        finite = math.isfinite(loss)
        if not self.finite_only:  # every process skips the update together
            finite = strategy.reduce_boolean_decision(finite, all=True)
        if finite:
            self._recent.append(loss)
            self.last_val = loss

    # ------------------------------------------------------------ checkpoints
    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            mode=self.mode, window=self.window, warmup=self.warmup, atol=self.atol, rtol=self.rtol
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "last_val": self.last_val,
            "mode": self.mode,
            "warmup": self.warmup,
            "atol": self.atol,
            "rtol": self.rtol,
            "bad_batches": list(self.bad_batches),
            "bad_batches_path": None if self.exclude_batches_path is None else str(self.exclude_batches_path),
            "running": list(self._recent),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last_val = state_dict["last_val"]
        self.mode = state_dict["mode"]
        self.warmup = state_dict["warmup"]
        self.atol = state_dict["atol"]
        self.rtol = state_dict["rtol"]
        self.bad_batches = list(state_dict["bad_batches"])
        self.exclude_batches_path = state_dict["bad_batches_path"]
        self._recent = deque(state_dict.get("running", []), maxlen=self.window)

    # --------------------------------------------------------------- helpers
    def _is_spike(self, loss: float) -> bool:
        if self.finite_only and not math.isfinite(loss):
            return True
        if self._is_better(loss - self.last_val):
            return False
        mean = self.running_mean
        difference = abs(loss - mean)
        within_atol = self.atol is not None and not difference >= abs(self.atol)
        within_rtol = self.rtol is not None and not difference >= abs(self.rtol * mean)
        return not (within_atol or within_rtol)

    def _is_better(self, change: float) -> bool:
        return change <= 0.0 if self.mode == "min" else change >= 0.0

    def _handle_spike(self, trainer: Trainer, batch_idx: int) -> None:
        # the current batch may be bad data; the previous one may have spoiled the weights
        self.bad_batches.extend([batch_idx - 1, batch_idx])
        if trainer.is_global_zero:
            path = Path(str(self.exclude_batches_path))
            path.parent.mkdir(parents=True, exist_ok=True)
            import json

            path.write_text(json.dumps(self.bad_batches, indent=4))
        raise TrainingSpikeException(batch_idx=batch_idx)


def _loss_of(outputs: Any) -> float | None:
    import torch

    if outputs is None:
        return None
    if isinstance(outputs, Mapping):
        outputs = outputs.get("loss")
        if outputs is None:
            return None
    if not isinstance(outputs, torch.Tensor):
        raise TypeError(
            f"SpikeDetection needs the training step's loss: outputs of type torch.Tensor or a Mapping with a "
            f"'loss' tensor, got {type(outputs).__qualname__}"
        )
    return float(outputs.detach().float().mean())
