"""ThroughputMonitor: log samples, batches and FLOPs per second while training and evaluating.

Throughput is the number to compare between data pipelines, precisions and
machines; a rolling window over the latest batches keeps it current without
the noise of a single batch. Keys are Lightning's, prefixed by the stage:
``train/device/samples_per_sec``, ``train/device/batches_per_sec``,
``train/device/flops_per_sec``, ``train/samples``, ``train/time`` ... and the
same under ``validate/``, ``test/`` and ``predict/``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ember.callback import Callback
from ember.core.state import RunningStage, TrainerFn
from ember.errors import EmberWarning

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.module import Module
    from ember.core.trainer import Trainer


class Throughput:
    """Rolling throughput over the last ``window_size`` updates, per device and, with several processes, in total.

    :param available_flops: the device's peak FLOP/s, for ``device/mfu``; None leaves it out.
    :param world_size: processes; totals (``samples_per_sec`` ...) are added when above 1.
    :param window_size: how many updates the rates are computed over (at least 2); rates
        appear once the window is full.
    :param separator: joins ``device`` and the metric name.

    Each :meth:`update` takes running totals (time, batches, samples, lengths) that must
    increase, and the FLOPs of the latest batch.
    """

    def __init__(
        self, available_flops: float | None = None, world_size: int = 1, window_size: int = 100, separator: str = "/"
    ) -> None:
        if world_size < 1:
            raise ValueError(f"Throughput(world_size={world_size!r}): accepted is an int >= 1")
        if window_size < 2:
            raise ValueError(f"Throughput(window_size={window_size!r}): accepted is an int >= 2")
        self.available_flops = available_flops
        self.world_size = world_size
        self.window_size = window_size
        self.separator = separator
        self._time: deque[float] = deque(maxlen=window_size)
        self._batches: deque[int] = deque(maxlen=window_size)
        self._samples: deque[int] = deque(maxlen=window_size)
        self._lengths: deque[int] = deque(maxlen=window_size)
        self._flops: deque[float] = deque(maxlen=window_size)

    def update(
        self, *, time: float, batches: int, samples: int, lengths: int | None = None, flops: float | None = None
    ) -> None:
        """Record totals so far: seconds, batches, samples and items (``lengths``); ``flops`` of the latest batch."""
        if samples < batches:
            raise ValueError(f"Throughput: samples ({samples}) must be >= batches ({batches})")
        if lengths is not None and lengths < samples:
            raise ValueError(f"Throughput: lengths ({lengths}) must be >= samples ({samples})")
        for name, window, value in (("time", self._time, time), ("batches", self._batches, batches)):
            if window and value <= window[-1]:
                raise ValueError(f"Throughput: {name} must increase with each update; got {value} after {window[-1]}")
        self._time.append(time)
        self._batches.append(batches)
        self._samples.append(samples)
        if lengths is not None:
            self._lengths.append(lengths)
        if flops is not None:
            self._flops.append(flops * self.world_size)

    def compute(self) -> dict[str, float]:
        """The totals so far and, once the window is full, the rates over it."""
        sep, world = self.separator, self.world_size
        metrics: dict[str, float] = {"time": self._time[-1], "batches": self._batches[-1], "samples": self._samples[-1]}
        if self._lengths:
            metrics["lengths"] = self._lengths[-1]
        if len(self._time) < self.window_size:
            return metrics
        elapsed = self._time[-1] - self._time[0]
        rates = {
            "batches_per_sec": (self._batches[-1] - self._batches[0]) / elapsed,
            "samples_per_sec": (self._samples[-1] - self._samples[0]) / elapsed,
        }
        if len(self._lengths) == self.window_size:
            rates["items_per_sec"] = (self._lengths[-1] - self._lengths[0]) / elapsed
        for name, per_device in rates.items():
            metrics[f"device{sep}{name}"] = per_device
            if world > 1:
                metrics[name] = per_device * world
        if len(self._flops) == self.window_size:
            flops_per_sec = (sum(self._flops) - self._flops[0]) / elapsed  # the first batch ended before the window
            if world > 1:
                metrics["flops_per_sec"] = flops_per_sec
            metrics[f"device{sep}flops_per_sec"] = flops_per_sec / world
            if self.available_flops:
                metrics[f"device{sep}mfu"] = flops_per_sec / world / self.available_flops
        return metrics

    def reset(self) -> None:
        for window in (self._time, self._batches, self._samples, self._lengths, self._flops):
            window.clear()


_MAIN_STAGE = {
    TrainerFn.FITTING: RunningStage.TRAINING,
    TrainerFn.VALIDATING: RunningStage.VALIDATING,
    TrainerFn.TESTING: RunningStage.TESTING,
    TrainerFn.PREDICTING: RunningStage.PREDICTING,
}


class ThroughputMonitor(Callback):
    """Log throughput from global rank 0 at each optimizer step and each evaluation or predict batch.

    :param batch_size_fn: the number of samples in a batch, e.g. ``lambda batch: batch[0].size(0)``.
    :param length_fn: the number of items (e.g. tokens) in a batch, for ``items_per_sec``.
    :param kwargs: passed to :class:`Throughput`: ``window_size`` (100), ``separator`` ("/").

    FLOP/s are logged when the model has a ``flops_per_batch`` attribute (read
    at every batch). Training values are logged every ``log_every_n_steps``
    after a batch that stepped the optimizer, with the loggers' step; time
    spent validating is not counted as training time.
    """

    def __init__(
        self, batch_size_fn: Callable[[Any], int], length_fn: Callable[[Any], int] | None = None, **kwargs: Any
    ) -> None:
        self.kwargs = kwargs
        self.batch_size_fn = batch_size_fn
        self.length_fn = length_fn
        self.available_flops: float | None = None
        self._throughputs: dict[RunningStage, Throughput] = {}
        self._t0s: dict[RunningStage, float] = {}
        self._lengths: dict[RunningStage, int] = {}
        self._samples: dict[RunningStage, int] = {}
        self._batches: dict[RunningStage, int] = {}
        self._steps: dict[RunningStage, int] = {}
        self._module_has_flops: bool | None = None

    def setup(self, trainer: Trainer, pl_module: Module, stage: str) -> None:
        stages = [_MAIN_STAGE[TrainerFn(stage)]]
        if stage == TrainerFn.FITTING:
            stages.append(RunningStage.VALIDATING)
        for running in stages:
            self._throughputs[running] = Throughput(self.available_flops, trainer.world_size, **self.kwargs)

    # ------------------------------------------------------------- training
    def on_train_start(self, trainer: Trainer, pl_module: Module) -> None:
        if trainer.is_global_zero:
            self._start(trainer, RunningStage.TRAINING)

    def on_train_batch_end(self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int) -> None:
        if not trainer.is_global_zero:
            return
        self._update(trainer, pl_module, batch, RunningStage.TRAINING)
        accumulated = (batch_idx + 1) % (trainer.accumulate_grad_batches or 1) == 0
        if accumulated or batch_idx + 1 >= trainer.num_training_batches:  # the optimizer stepped: log
            self._log(trainer, RunningStage.TRAINING, None)

    # ----------------------------------------------------------- evaluation
    def on_validation_start(self, trainer: Trainer, pl_module: Module) -> None:
        if trainer.is_global_zero and not trainer.sanity_checking:
            self._start(trainer, RunningStage.VALIDATING)

    def on_validation_batch_end(self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, *_: Any) -> None:
        if trainer.is_global_zero and not trainer.sanity_checking:
            self._evaluation_batch(trainer, pl_module, batch, RunningStage.VALIDATING)

    def on_validation_end(self, trainer: Trainer, pl_module: Module) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        train, val = RunningStage.TRAINING, RunningStage.VALIDATING
        if train not in self._t0s:
            return
        train_times, val_times = self._throughputs[train]._time, self._throughputs[val]._time
        paused_at = self._t0s[train] + (train_times[-1] if train_times else 0.0)
        resumed_at = self._t0s[val] + (val_times[-1] if val_times else 0.0)
        self._t0s[train] += resumed_at - paused_at  # the clock of training skips the validation

    def on_test_start(self, trainer: Trainer, pl_module: Module) -> None:
        if trainer.is_global_zero:
            self._start(trainer, RunningStage.TESTING)

    def on_test_batch_end(self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, *_: Any) -> None:
        if trainer.is_global_zero:
            self._evaluation_batch(trainer, pl_module, batch, RunningStage.TESTING)

    def on_predict_start(self, trainer: Trainer, pl_module: Module) -> None:
        if trainer.is_global_zero:
            self._start(trainer, RunningStage.PREDICTING)

    def on_predict_batch_end(self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, *_: Any) -> None:
        if trainer.is_global_zero:
            self._evaluation_batch(trainer, pl_module, batch, RunningStage.PREDICTING)

    # -------------------------------------------------------------- helpers
    def _start(self, trainer: Trainer, stage: RunningStage) -> None:
        """Begin timing ``stage``; a fit restarts the counts, repeated validate/test/predict calls add up."""
        if trainer.state.fn == TrainerFn.FITTING or stage not in self._samples:
            self._throughputs[stage].reset()
            self._lengths[stage] = self._samples[stage] = self._batches[stage] = 0
        self._t0s[stage] = time.perf_counter()

    def _evaluation_batch(self, trainer: Trainer, pl_module: Module, batch: Any, stage: RunningStage) -> None:
        self._update(trainer, pl_module, batch, stage)
        self._steps[stage] = self._steps.get(stage, 0) + 1
        self._log(trainer, stage, self._steps[stage])

    def _update(self, trainer: Trainer, pl_module: Module, batch: Any, stage: RunningStage) -> None:
        import torch

        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize(trainer.strategy.root_device)  # the clock must see the queued kernels finish
        elapsed = time.perf_counter() - self._t0s[stage]
        with torch.inference_mode():
            samples = self.batch_size_fn(batch)
            length = self.length_fn(batch) if self.length_fn is not None else None
        if self._module_has_flops is None:
            self._module_has_flops = hasattr(pl_module, "flops_per_batch")
            if not self._module_has_flops:
                import warnings

                warnings.warn(
                    f"ThroughputMonitor logs FLOP/s only when the model has a `flops_per_batch` attribute; "
                    f"{type(pl_module).__name__} has none",
                    EmberWarning,
                    stacklevel=2,
                )
        self._samples[stage] += samples
        self._batches[stage] += 1
        if length is not None:
            self._lengths[stage] += length
        self._throughputs[stage].update(
            time=elapsed,
            batches=self._batches[stage],
            samples=self._samples[stage],
            lengths=None if length is None else self._lengths[stage],
            flops=getattr(pl_module, "flops_per_batch", None),
        )

    def _log(self, trainer: Trainer, stage: RunningStage, step: int | None) -> None:
        """Send this stage's metrics to the loggers every ``log_every_n_steps`` (training adds the epoch)."""
        if (trainer.fit_progress.stepped_batches + 1) % trainer.log_every_n_steps != 0 and not trainer.should_stop:
            return
        if not trainer.loggers:
            return
        throughput = self._throughputs[stage]
        metrics = {f"{stage.value}{throughput.separator}{key}": value for key, value in throughput.compute().items()}
        if step is None:
            metrics["epoch"] = trainer.current_epoch
            step = trainer.fit_progress.stepped_batches
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
