"""LearningRateMonitor: log each optimizer's learning rate (and optionally momentum and weight decay).

Schedulers change the learning rate out of sight; a logged curve shows
whether warm-up, decay or a plateau cut happened when intended. Names follow
Lightning's, so dashboards built for Lightning runs read ember runs unchanged:
``lr-Adam``, ``lr-Adam-1`` for a second Adam, ``lr-Adam/pg2`` for a second
parameter group (or the group's ``name``), the scheduler config's ``name``
when given, and ``-momentum`` / ``-weight_decay`` suffixes.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import TYPE_CHECKING, Any

from ember.callback import Callback
from ember.errors import EmberWarning, MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.module import Module
    from ember.core.trainer import Trainer

INTERVALS = (None, "step", "epoch")


class LearningRateMonitor(Callback):
    """Log learning rates to the Trainer's loggers during fit.

    :param logging_interval: ``"step"`` or ``"epoch"`` logs every optimizer at that
        interval; None (default) logs each scheduled optimizer at its scheduler's
        ``interval`` and optimizers without a scheduler at both.
    :param log_momentum: also log momentum (``betas[0]`` for Adam-like optimizers; 0 when there is none).
    :param log_weight_decay: also log weight decay.

    Step values are logged every ``log_every_n_steps`` at the start of a
    training batch, epoch values at the start of each training epoch, with the
    loggers' step. The values also appear in ``trainer.callback_metrics``, so
    other callbacks may monitor them. ``lrs`` keeps every logged value by name.
    """

    def __init__(
        self, logging_interval: str | None = None, log_momentum: bool = False, log_weight_decay: bool = False
    ) -> None:
        if logging_interval not in INTERVALS:
            raise MisconfigurationError(
                f"LearningRateMonitor(logging_interval={logging_interval!r}): accepted are 'step', 'epoch' and None"
            )
        self.logging_interval = logging_interval
        self.log_momentum = log_momentum
        self.log_weight_decay = log_weight_decay
        self.lrs: dict[str, list[float]] = {}
        self.last_momentum_values: dict[str, float | None] = {}
        self.last_weight_decay_values: dict[str, float | None] = {}

    def on_train_start(self, trainer: Trainer, pl_module: Module) -> None:
        if not trainer.loggers:
            raise MisconfigurationError(
                "LearningRateMonitor needs a logger, but the Trainer has none (logger=False); "
                "pass logger=True or a Logger to the Trainer, or remove the callback"
            )
        if self.log_momentum and not all(_has_momentum(opt) for opt, _, _ in _named_optimizers(trainer)):
            warnings.warn(
                "LearningRateMonitor(log_momentum=True), but some optimizers have no momentum; "
                "0 is logged as their momentum",
                EmberWarning,
                stacklevel=2,
            )
        names = [name for _, group_names, _ in _named_optimizers(trainer) for name in group_names]
        self.lrs = {name: [] for name in names}
        self.last_momentum_values = {f"{name}-momentum": None for name in names}
        self.last_weight_decay_values = {f"{name}-weight_decay": None for name in names}

    def on_train_batch_start(self, trainer: Trainer, pl_module: Module, batch: Any, batch_idx: int) -> None:
        step = trainer.fit_progress.stepped_batches
        if (step + 1) % trainer.log_every_n_steps != 0 and not trainer.should_stop:
            return
        if self.logging_interval != "epoch":
            self._log(trainer, "step" if self.logging_interval is None else None)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: Module) -> None:
        if self.logging_interval != "step":
            self._log(trainer, "epoch" if self.logging_interval is None else None)

    def _log(self, trainer: Trainer, interval: str | None) -> None:
        """Log the optimizers scheduled at ``interval`` (all when None) and those without a scheduler."""
        stats: dict[str, float] = {}
        for optimizer, names, scheduled_at in _named_optimizers(trainer):
            if interval is not None and scheduled_at not in (interval, None):
                continue
            stats.update(self._stats(optimizer, names))
        if not stats:
            return
        import torch

        device = trainer.strategy.root_device  # visible in trainer.callback_metrics, for monitors
        trainer._metrics.callback.update({key: torch.tensor(value, device=device) for key, value in stats.items()})
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(stats, step=trainer.fit_progress.stepped_batches)

    def _stats(self, optimizer: Any, names: list[str]) -> dict[str, float]:
        stats: dict[str, float] = {}
        betas = "betas" in optimizer.defaults
        for group, name in zip(optimizer.param_groups, names):
            if name not in self.lrs:  # new; when a second group appeared, the first's history moves to .../pg1
                self.lrs[name] = self.lrs.pop(name[: -len("/pg1")], []) if name.endswith("/pg1") else []
            stats[name] = group["lr"]
            self.lrs[name].append(group["lr"])
            if self.log_momentum:
                momentum = group["betas"][0] if betas else group.get("momentum", 0)
                stats[f"{name}-momentum"] = self.last_momentum_values[f"{name}-momentum"] = momentum
            if self.log_weight_decay:
                decay = group["weight_decay"]
                stats[f"{name}-weight_decay"] = self.last_weight_decay_values[f"{name}-weight_decay"] = decay
        return stats


def _named_optimizers(trainer: Trainer) -> list[tuple[Any, list[str], str | None]]:
    """``(optimizer, one name per param group, scheduler interval or None)``: scheduled ones first, as Lightning."""
    entries: list[tuple[Any, str | None, str | None]] = []
    seen: list[Any] = []
    for config in trainer.lr_scheduler_configs:
        optimizer = config.scheduler.optimizer
        seen.append(optimizer)
        entries.append((optimizer, config.name, config.interval))
    for optimizer in trainer.optimizers:
        optimizer = getattr(optimizer, "optimizer", optimizer)
        if not any(optimizer is other for other in seen):
            seen.append(optimizer)
            entries.append((optimizer, None, None))
    counts: Counter[type] = Counter()
    named = []
    for optimizer, given, interval in entries:
        name = given
        if name is None:
            counts[type(optimizer)] += 1
            count = counts[type(optimizer)]
            name = f"lr-{type(optimizer).__name__}" + (f"-{count - 1}" if count > 1 else "")
        named.append((optimizer, _group_names(name, optimizer.param_groups), interval))
    return named


def _group_names(name: str, groups: list[dict[str, Any]]) -> list[str]:
    """``name`` for a single unnamed group; ``name/<group name or pgN>`` otherwise."""
    labels = [group.get("name", f"pg{index}") for index, group in enumerate(groups, 1)]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise MisconfigurationError(
            f"{name}: several parameter groups share the name(s) {repeated}; give each group a distinct 'name'"
        )
    if len(groups) == 1 and "name" not in groups[0]:
        return [name]
    return [f"{name}/{label}" for label in labels]


def _has_momentum(optimizer: Any) -> bool:
    return "momentum" in optimizer.defaults or "betas" in optimizer.defaults
