"""What ``configure_optimizers`` may return, turned into optimizers and scheduler configs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ember.errors import MisconfigurationError

_SCHEDULER_KEYS = {"scheduler", "interval", "frequency", "monitor", "strict", "name", "reduce_on_plateau"}
_FORMS = (
    "an optimizer; a list of optimizers; (optimizers, schedulers); "
    'a dict {"optimizer": ..., "lr_scheduler": ..., "monitor": ...}; or a list of such dicts'
)


@dataclass
class LRSchedulerConfig:
    """A scheduler and when to step it (``trainer.lr_scheduler_configs``)."""

    scheduler: Any
    name: str | None = None
    interval: str = "epoch"
    frequency: int = 1
    reduce_on_plateau: bool = False
    monitor: str | None = None
    strict: bool = True


def parse_optimizers(returned: Any) -> tuple[list[torch.optim.Optimizer], list[LRSchedulerConfig]]:
    """Split what ``configure_optimizers`` returned into optimizers and scheduler configs."""
    if returned is None:
        return [], []
    if isinstance(returned, torch.optim.Optimizer):
        return [returned], []
    if isinstance(returned, Mapping):
        return _from_dicts([returned])
    if isinstance(returned, (list, tuple)):
        if len(returned) == 2 and isinstance(returned[0], (list, tuple)) and isinstance(returned[1], (list, tuple)):
            optimizers = _optimizers(returned[0])
            schedulers = [_scheduler_config(s, None) for s in returned[1]]
            return optimizers, schedulers
        if returned and all(isinstance(item, Mapping) for item in returned):
            return _from_dicts(returned)
        if all(isinstance(item, torch.optim.Optimizer) for item in returned):
            return list(returned), []
    raise MisconfigurationError(f"configure_optimizers() returned {returned!r}; accepted forms are {_FORMS}")


def _optimizers(items: Sequence[Any]) -> list[torch.optim.Optimizer]:
    for item in items:
        if not isinstance(item, torch.optim.Optimizer):
            raise MisconfigurationError(
                f"configure_optimizers() returned {item!r} where an optimizer belongs; accepted forms are {_FORMS}"
            )
    return list(items)


def _from_dicts(dicts: Sequence[Mapping[str, Any]]) -> tuple[list[torch.optim.Optimizer], list[LRSchedulerConfig]]:
    optimizers, schedulers = [], []
    for entry in dicts:
        unknown = set(entry) - {"optimizer", "lr_scheduler", "monitor"}
        if "optimizer" not in entry or unknown:
            raise MisconfigurationError(
                f"configure_optimizers() returned a dict with keys {sorted(entry)}; "
                'accepted keys are "optimizer" (required), "lr_scheduler" and "monitor"'
            )
        optimizers += _optimizers([entry["optimizer"]])
        if entry.get("lr_scheduler") is not None:
            schedulers.append(_scheduler_config(entry["lr_scheduler"], entry.get("monitor")))
    return optimizers, schedulers


def _scheduler_config(scheduler: Any, monitor: str | None) -> LRSchedulerConfig:
    settings: dict[str, Any] = {}
    if isinstance(scheduler, Mapping):
        unknown = set(scheduler) - _SCHEDULER_KEYS
        if "scheduler" not in scheduler or unknown:
            raise MisconfigurationError(
                f"lr_scheduler dict with keys {sorted(scheduler)}; accepted keys are {sorted(_SCHEDULER_KEYS)}, "
                '"scheduler" required'
            )
        settings = dict(scheduler)
        scheduler = settings.pop("scheduler")
    settings.setdefault("monitor", monitor)
    config = LRSchedulerConfig(scheduler=scheduler, **settings)
    if config.interval not in ("step", "epoch"):
        raise MisconfigurationError(f'lr_scheduler "interval": {config.interval!r}; accepted are "step" and "epoch"')
    if not isinstance(config.frequency, int) or config.frequency < 1:
        raise MisconfigurationError(f'lr_scheduler "frequency": {config.frequency!r}; accepted is an int >= 1')
    config.reduce_on_plateau = config.reduce_on_plateau or isinstance(
        scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau
    )
    if config.reduce_on_plateau and config.monitor is None:
        raise MisconfigurationError(
            'ReduceLROnPlateau needs a metric to monitor: return {"optimizer": ..., "lr_scheduler": ..., '
            '"monitor": "val_loss"} or put "monitor" in the lr_scheduler dict'
        )
    if not hasattr(scheduler, "step"):
        raise MisconfigurationError(f"lr_scheduler {scheduler!r} has no step() method")
    return config


def clear_gradients(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.zero_grad()``: with torch's own zero_grad, the same ``grad = None`` per parameter, made directly.

    torch's zero_grad opens a profiler range even when no profiler records,
    which costs more than clearing the gradients of a small model (about 15 µs
    a step on a 2-core CPU); PyTorch's performance guide suggests the direct
    form. An optimizer with its own zero_grad, or a running profiler (which
    shows the range), gets the real call.
    """
    if type(optimizer).zero_grad is not _TORCH_ZERO_GRAD or "zero_grad" in vars(optimizer) or _profiling():
        optimizer.zero_grad()
        return
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            parameter.grad = None


def _torch_zero_grad() -> object:
    """torch's own ``Optimizer.zero_grad``; None when something replaced it before ember was imported."""
    function = torch.optim.Optimizer.zero_grad
    own = (
        getattr(function, "__module__", None) == "torch.optim.optimizer"
        and function.__qualname__ == "Optimizer.zero_grad"
    )
    return function if own else None


_TORCH_ZERO_GRAD = _torch_zero_grad()
_profiling = torch.autograd._profiler_enabled


class SteppingOptimizer:
    """The optimizer a model sees: ``step()`` runs ember's step path (hooks, precision, step counting).

    Everything else (``param_groups``, ``state``, ``zero_grad`` ...) is the
    wrapped optimizer's.
    """

    __slots__ = ("_step", "optimizer")

    def __init__(self, optimizer: torch.optim.Optimizer, step: Callable[[torch.optim.Optimizer, Any], Any]) -> None:
        self.optimizer = optimizer
        self._step = step

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        return self._step(self.optimizer, closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        if set_to_none:
            clear_gradients(self.optimizer)
        else:
            self.optimizer.zero_grad(set_to_none=False)

    def __getattr__(self, name: str) -> Any:
        if name in SteppingOptimizer.__slots__:  # not set yet, e.g. while being copied
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __repr__(self) -> str:
        return f"SteppingOptimizer({self.optimizer!r})"
