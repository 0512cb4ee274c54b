"""Find where training waits for the device: tensor values read into Python, step by step.

Reading a tensor's value (``.item()``, ``float(t)``, ``bool(t)``, ``.tolist()``,
``.cpu()``...) makes the host wait for the device to finish. On the CPU nothing
waits, but the same calls are where a GPU run would stall, so counting them on
the CPU finds the stalls without a GPU; on a CUDA device,
``HostSyncs(cuda=True)`` counts the synchronisations themselves through
``torch.cuda.set_sync_debug_mode``. Each one is filed under the training step
it happened in and under who made it: the progress bar (when it redraws), a
logger (at the logging interval), or anything else, which is what a plugin or
framework should not do every step.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from ember.callback import Callback

#: Tensor methods that hand a value to Python, and so wait for the device.
CONVERSIONS = frozenset(
    ("item", "tolist", "numpy", "cpu", "__float__", "__int__", "__bool__", "__index__", "__format__", "__complex__")
)
_INTERNAL = ("/ember/testing/syncs.py", "/warnings.py", "/torch/_tensor.py", "/torch/overrides.py")
_BAR_FILES = ("tqdm_progress.py", "progress_bar.py", "rich_progress.py", "/tqdm/", "/rich/")


@dataclass(frozen=True)
class Sync:
    """One host-device synchronisation: the training batch it happened in, who made it, and where."""

    step: int
    origin: str  # "progress bar", "logger", "loss check" (CPU losses only, never on a GPU) or "other"
    where: str


class HostSyncs(Callback):
    """A callback and context manager that records host-device synchronisations during training batches.

    ::

        syncs = HostSyncs()
        trainer = ember.Trainer(callbacks=[syncs])
        with syncs:
            trainer.fit(model)
        assert syncs.unexplained() == []
    """

    def __init__(self, cuda: bool = False) -> None:
        self.cuda = cuda
        self.events: list[Sync] = []
        self._step: int | None = None
        self._batches = 0
        self._mode: _Conversions | None = None
        self._previous: Any = None
        self._show: Any = None

    # ----------------------------------------------------------- step windows
    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._step = self._batches
        self._batches += 1

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        self._step = None

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._step = None

    # -------------------------------------------------------------- recording
    def __enter__(self) -> HostSyncs:
        if self.cuda:
            self._previous = (warnings.catch_warnings(), torch.cuda.get_sync_debug_mode())
            self._previous[0].__enter__()  # the filters and showwarning come back on exit
            self._show = warnings.showwarning
            warnings.simplefilter("always")
            warnings.showwarning = self._on_warning
            torch.cuda.set_sync_debug_mode("warn")
        else:
            self._mode = _Conversions(self)
            self._mode.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.cuda:
            torch.cuda.set_sync_debug_mode(self._previous[1])
            self._previous[0].__exit__(*exc_info)
        elif self._mode is not None:
            self._mode.__exit__(*exc_info)
            self._mode = None

    def record(self) -> None:
        """File one synchronisation, made by the caller's caller, under the current step."""
        if self._step is None:
            return
        stack = traceback.extract_stack(sys._getframe(1))
        files = [(frame.filename.replace("\\", "/"), frame.name) for frame in stack]
        if any(name == "_log_to_loggers" or "/ember/loggers/" in file for file, name in files):
            origin = "logger"
        elif any(name == "check_finite" and file.endswith("loops/optimization.py") for file, name in files):
            origin = "loss check"  # the non-finite loss warning reads the loss only when it is on the CPU
        elif any(part in file for file, _ in files for part in _BAR_FILES):
            origin = "progress bar"
        else:
            origin = "other"
        callers = [frame for frame, (file, _) in zip(stack, files) if not file.endswith(_INTERNAL)]
        frame = (callers or stack)[-1]
        self.events.append(Sync(self._step, origin, f"{frame.filename}:{frame.lineno} in {frame.name}"))

    def _on_warning(self, message: Any, category: Any, filename: str, lineno: int, *args: Any, **kwargs: Any) -> None:
        if "synchronizing" in str(message):
            self.record()
        else:
            self._show(message, category, filename, lineno, *args, **kwargs)

    # ---------------------------------------------------------------- results
    def steps_with(self, origin: str) -> set[int]:
        """The training batches (counted from 0 across epochs) in which ``origin`` synchronised."""
        return {event.step for event in self.events if event.origin == origin}

    def unexplained(self) -> list[Sync]:
        """Synchronisations made by neither the progress bar, a logger nor the CPU-only loss check: per-step stalls."""
        return [event for event in self.events if event.origin == "other"]


class _Conversions(TorchFunctionMode):
    def __init__(self, recorder: HostSyncs) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if getattr(func, "__name__", None) in CONVERSIONS:
            self.recorder.record()
        return func(*args, **(kwargs or {}))
