"""``self.log`` bookkeeping: where each logged value goes and how epoch values are reduced.

A value logged ``on_step`` is visible at once; one logged ``on_epoch`` is
kept per batch and reduced when the epoch (or evaluation run) ends. Logging
both gives ``name_step`` and ``name_epoch`` keys, as in Lightning. Nothing is
converted to a Python float until someone reads it, so logging every step
costs a dict write, not a device sync.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from ember.errors import MisconfigurationError

# (default on_step, default on_epoch, on_step allowed) for each hook that may log
_TRAIN_STEP = (True, False, True)
_EVAL_STEP = (False, True, True)
_EPOCH_ONLY = (False, True, False)
LOGGING_HOOKS: dict[str, tuple[bool, bool, bool]] = {
    **dict.fromkeys(
        (
            "training_step",
            "on_train_batch_start",
            "on_train_batch_end",
            "on_before_backward",
            "backward",
            "on_after_backward",
            "on_before_optimizer_step",
            "optimizer_step",
            "configure_gradient_clipping",
            "clip_gradients",
            "on_before_zero_grad",
            "optimizer_zero_grad",
        ),
        _TRAIN_STEP,
    ),
    **dict.fromkeys(
        (
            "validation_step",
            "test_step",
            "on_validation_batch_start",
            "on_validation_batch_end",
            "on_test_batch_start",
            "on_test_batch_end",
        ),
        _EVAL_STEP,
    ),
    **dict.fromkeys(
        (
            "on_train_start",
            "on_validation_start",
            "on_test_start",
            "on_train_epoch_start",
            "on_train_epoch_end",
            "on_validation_epoch_start",
            "on_validation_epoch_end",
            "on_test_epoch_start",
            "on_test_epoch_end",
        ),
        _EPOCH_ONLY,
    ),
}

REDUCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sum": torch.sum,
    "max": torch.max,
    "min": torch.min,
}
_TORCH_REDUCTIONS = {torch.mean: "mean", torch.sum: "sum", torch.max: "max", torch.min: "min"}


class _EpochMetric:
    """Per-batch values of one on_epoch metric, reduced when the epoch ends."""

    __slots__ = ("logger", "on_step", "prog_bar", "reduce_fx", "sizes", "sync_dist", "values")

    def __init__(self, on_step: bool, prog_bar: bool, logger: bool, reduce_fx: Any, sync_dist: bool) -> None:
        self.on_step, self.prog_bar, self.logger = on_step, prog_bar, logger
        self.reduce_fx, self.sync_dist = reduce_fx, sync_dist
        self.values: list[torch.Tensor] = []
        self.sizes: list[int] = []

    def reduce(self) -> torch.Tensor:
        values = torch.stack(self.values).float()
        if self.reduce_fx == "mean":
            weights = torch.tensor(self.sizes, dtype=values.dtype, device=values.device)
            return (values * weights).sum() / weights.sum()
        if isinstance(self.reduce_fx, str):
            return REDUCTIONS[self.reduce_fx](values)
        return torch.as_tensor(self.reduce_fx(values))


class MetricStore:
    """The metrics of one Trainer: what callbacks, loggers and the progress bar see."""

    def __init__(self) -> None:
        #: ``trainer.callback_metrics``: tensors, as monitors read them.
        self.callback: dict[str, torch.Tensor] = {}
        #: ``trainer.logged_metrics``: everything sent to the loggers.
        self.logged: dict[str, torch.Tensor] = {}
        self._progress_bar: dict[str, torch.Tensor] = {}
        self._pendings: dict[str, dict[str, torch.Tensor]] = {}
        self._pending: dict[str, torch.Tensor] = self._pendings.setdefault("", {})
        self._epochs: dict[str, dict[str, _EpochMetric]] = {}
        self._stage = ""
        self._epoch: dict[str, _EpochMetric] = self._epochs.setdefault("", {})
        self._options: dict[tuple[str, str], tuple[Any, ...]] = {}
        #: Set by the loops: the current batch (for batch sizes), stage and dataloader suffix.
        self.batch: Any = None
        self.training = False
        self.dataloader_suffix = ""
        #: Reduces a tensor over processes; the identity on one process.
        self.sync: Callable[[torch.Tensor, str], torch.Tensor] = lambda tensor, reduce_fx: tensor
        self._sized: Any = None
        self._size = 1

    # ------------------------------------------------------------------ log
    def log(
        self,
        fx: str | None,
        name: str,
        value: Any,
        prog_bar: bool = False,
        logger: bool | None = None,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        reduce_fx: str | Callable[..., Any] = "mean",
        sync_dist: bool = False,
        batch_size: int | None = None,
        add_dataloader_idx: bool = True,
    ) -> None:
        """Record ``value`` under ``name`` as logged from hook ``fx``; see :meth:`ember.Module.log`."""
        options = self._options.get((fx or "", name))
        if options is None or options[0] != (prog_bar, logger, on_step, on_epoch, reduce_fx, sync_dist):
            options = self._resolve(fx, name, prog_bar, logger, on_step, on_epoch, reduce_fx, sync_dist)
        _, on_step, on_epoch, logger, reduce_fx = options
        if add_dataloader_idx and self.dataloader_suffix:
            name += self.dataloader_suffix
        tensor = _to_scalar_tensor(name, value)
        if on_step:
            if sync_dist:
                tensor = self.sync(tensor, reduce_fx if isinstance(reduce_fx, str) else "mean")
            key = _forked(name, "_step") if on_epoch else name
            if logger:
                self.logged[key] = tensor
                self._pending[key] = tensor
            if self.training:
                self.callback[name] = tensor
                self.callback[key] = tensor
            if prog_bar:
                self._progress_bar[key] = tensor
        if on_epoch:
            metric = self._epoch.get(name)
            if metric is None:
                metric = self._epoch[name] = _EpochMetric(on_step, prog_bar, logger, reduce_fx, sync_dist)
            metric.values.append(tensor)
            metric.sizes.append(batch_size if batch_size is not None else self._batch_size())

    def _resolve(
        self,
        fx: str | None,
        name: str,
        prog_bar: bool,
        logger: bool | None,
        on_step: bool | None,
        on_epoch: bool | None,
        reduce_fx: Any,
        sync_dist: bool,
    ) -> tuple[Any, ...]:
        if fx not in LOGGING_HOOKS:
            allowed = ", ".join(sorted(LOGGING_HOOKS))
            raise MisconfigurationError(
                f"self.log({name!r}) was called inside {fx or 'no hook'!r}, where logging is not supported; "
                f"it is allowed in: {allowed}"
            )
        default_step, default_epoch, step_allowed = LOGGING_HOOKS[fx]
        resolved_step = default_step if on_step is None else bool(on_step)
        resolved_epoch = default_epoch if on_epoch is None else bool(on_epoch)
        if resolved_step and not step_allowed:
            raise MisconfigurationError(
                f"self.log({name!r}, on_step=True) is not allowed in {fx!r}, which runs once per epoch; "
                "use on_step=False, on_epoch=True"
            )
        if not resolved_step and not resolved_epoch:
            raise MisconfigurationError(
                f"self.log({name!r}) with on_step=False and on_epoch=False records nothing; set one of them"
            )
        reduction = _TORCH_REDUCTIONS.get(reduce_fx, reduce_fx)
        if isinstance(reduction, str) and reduction not in ("mean", *REDUCTIONS):
            raise MisconfigurationError(
                f"self.log({name!r}, reduce_fx={reduce_fx!r}): accepted are 'mean', 'sum', 'max', 'min' or a callable"
            )
        if not isinstance(reduction, str) and not callable(reduction):
            raise MisconfigurationError(
                f"self.log({name!r}, reduce_fx={reduce_fx!r}): accepted are 'mean', 'sum', 'max', 'min' or a callable"
            )
        known = self._epoch.get(name)
        if known is not None and (known.on_step, known.reduce_fx) != (resolved_step, reduction):
            raise MisconfigurationError(
                f"self.log({name!r}) was called twice in one epoch with different on_step or reduce_fx "
                f"({known.on_step}, {known.reduce_fx!r}) and ({resolved_step}, {reduction!r})"
            )
        key = (prog_bar, logger, on_step, on_epoch, reduce_fx, sync_dist)
        options = (key, resolved_step, resolved_epoch, True if logger is None else bool(logger), reduction)
        self._options[(fx or "", name)] = options
        return options

    def _batch_size(self) -> int:
        batch = self.batch
        if batch is not self._sized:
            self._sized, self._size = batch, _infer_batch_size(batch) or 1
        return self._size

    # ---------------------------------------------------------------- epochs
    def use(self, stage: str, training: bool) -> tuple[str, bool]:
        """Accumulate epoch values for ``stage`` from now on; return what to pass back to restore."""
        previous = (self._stage, self.training)
        self._stage, self.training = stage, training
        self._epoch = self._epochs.setdefault(stage, {})
        self._pending = self._pendings.setdefault(stage, {})
        return previous

    def callback_metrics(self) -> dict[str, torch.Tensor]:
        """``trainer.callback_metrics``: the stored values, brought up to the running epoch's reductions so far.

        The mapping itself is returned, as in Lightning, so that a value a
        callback writes into it is what monitors (EarlyStopping,
        ModelCheckpoint) read later.
        """
        merged = self.callback
        for name, metric in self._epoch.items():
            value = metric.reduce()
            merged[name] = value
            merged[_forked(name, "_epoch") if metric.on_step else name] = value
        return merged

    def end_epoch(self) -> dict[str, torch.Tensor]:
        """Reduce the on_epoch metrics of the epoch that ended; return those meant for the loggers."""
        for_loggers: dict[str, torch.Tensor] = {}
        for name, metric in self._epoch.items():
            value = metric.reduce()
            if metric.sync_dist:
                value = self.sync(value, metric.reduce_fx if isinstance(metric.reduce_fx, str) else "mean")
            key = _forked(name, "_epoch") if metric.on_step else name
            self.callback[name] = value
            self.callback[key] = value
            if metric.logger:
                self.logged[key] = value
                for_loggers[key] = value
            if metric.prog_bar:
                self._progress_bar[key] = value
        self._epoch.clear()
        return for_loggers

    def take_step_metrics(self) -> dict[str, torch.Tensor]:
        """The step values the current stage logged since the last call, for the loggers."""
        pending = self._pending
        self._pending = self._pendings[self._stage] = {}
        return pending

    # ----------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The training epoch in progress, for a checkpoint: what a resumed fit needs to log what this one would.

        ``epoch``: each on_epoch metric's values and batch sizes so far (one tensor each), so that
        the epoch's mean covers the batches before the resume too; metrics with a callable
        ``reduce_fx`` are left out (a function cannot be saved). ``step``: the step values not
        sent to the loggers yet. Plain tensors, strings and bools: ``weights_only=True`` reads them.
        """
        epoch: dict[str, Any] = {}
        for name, metric in self._epochs.get("train", {}).items():
            if isinstance(metric.reduce_fx, str) and metric.values:
                values = torch.stack(metric.values)
                epoch[name] = {
                    "values": values,
                    "sizes": torch.tensor(metric.sizes),
                    "device": values.device.type,
                    "on_step": metric.on_step,
                    "prog_bar": metric.prog_bar,
                    "logger": metric.logger,
                    "reduce_fx": metric.reduce_fx,
                    "sync_dist": metric.sync_dist,
                }
        return {"epoch": epoch, "step": dict(self._pendings.get("train", {}))}

    def load_state_dict(self, state: Mapping[str, Any], device: torch.device, epoch: bool = True) -> None:
        """Continue from :meth:`state_dict`'s ``state``; with ``epoch=False`` (the saved epoch is over) only its step values.

        Values that were on an accelerator go to ``device``, so that they stack with those logged next.
        """
        self._pendings.setdefault("train", {}).update(state.get("step", {}))
        accumulated = self._epochs.setdefault("train", {})
        for name, saved in (state.get("epoch", {}) if epoch else {}).items():
            metric = _EpochMetric(
                saved["on_step"], saved["prog_bar"], saved["logger"], saved["reduce_fx"], saved["sync_dist"]
            )
            values = saved["values"].to(torch.device("cpu") if saved["device"] == "cpu" else device)
            metric.values, metric.sizes = list(values.unbind()), saved["sizes"].tolist()
            accumulated[name] = metric

    def reset(self) -> None:
        """Forget everything, as after the sanity check."""
        self.callback.clear()
        self.logged.clear()
        self._progress_bar.clear()
        for pending in self._pendings.values():
            pending.clear()
        for accumulated in self._epochs.values():
            accumulated.clear()

    @property
    def progress_bar(self) -> dict[str, float]:
        """``trainer.progress_bar_metrics``: floats, converted when read."""
        return {key: _as_number(value) for key, value in self._progress_bar.items()}


def _forked(name: str, tag: str) -> str:
    """``name`` with ``_step`` or ``_epoch`` added before any dataloader suffix: ``loss_step/dataloader_idx_0``."""
    base, suffix, index = name.partition("/dataloader_idx_")
    return f"{base}{tag}{suffix}{index}"


def _as_number(value: torch.Tensor) -> float:
    number = value.item()
    return float(number)


def _to_scalar_tensor(name: str, value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        detached = value.detach()
        if detached.dim() == 0:  # a single value: no need to count its elements
            return detached
        if value.numel() != 1:
            raise MisconfigurationError(
                f"self.log({name!r}) got a tensor of shape {tuple(value.shape)}; only single values can be logged"
            )
        return detached.reshape(())  # reshape costs ~5 µs even when a no-op
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value))
    raise MisconfigurationError(
        f"self.log({name!r}) got {type(value).__name__} {value!r}; accepted are a number or a one-element tensor"
    )


def _infer_batch_size(batch: Any) -> int:
    """The length of the first tensor in ``batch``, 0 when it holds none."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, Mapping):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for item in batch:
            size = _infer_batch_size(item)
            if size:
                return size
    return 0
