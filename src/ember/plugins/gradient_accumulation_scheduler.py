"""GradientAccumulationScheduler: change how many batches are accumulated per optimizer step, by epoch.

Large effective batches late in training (or a warm-up with small ones) without
touching the model: the callback sets ``trainer.accumulate_grad_batches``,
which the optimization loop reads on every batch. The factor is a function of
the epoch alone, so a resumed run (even one resumed mid-epoch) accumulates as
the uninterrupted run would have; there is no state to checkpoint.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from ember.callback import Callback
from ember.errors import EmberWarning, MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.module import Module
    from ember.core.trainer import Trainer


class GradientAccumulationScheduler(Callback):
    """Accumulate gradients over ``scheduling[epoch]`` batches from each listed (0-based) epoch on.

    ``GradientAccumulationScheduler({0: 1, 4: 2, 8: 4})`` steps the optimizer
    every batch in epochs 0-3, every 2 batches in epochs 4-7 and every 4
    batches from epoch 8. Epochs before the first key accumulate 1 batch.

    :param scheduling: ``{epoch: factor}``; epochs are ints >= 0, factors ints >= 1.
    """

    def __init__(self, scheduling: dict[int, int]) -> None:
        if not isinstance(scheduling, dict) or not scheduling:
            raise TypeError(
                f"GradientAccumulationScheduler(scheduling={scheduling!r}): expected a non-empty dict "
                "{epoch: accumulation factor}, e.g. {0: 1, 4: 2}"
            )
        bad_epochs = [key for key in scheduling if not isinstance(key, int) or isinstance(key, bool) or key < 0]
        if bad_epochs:
            raise MisconfigurationError(
                f"GradientAccumulationScheduler: epochs must be ints >= 0 (0-based); got {sorted(scheduling, key=str)}"
            )
        bad_factors = [v for v in scheduling.values() if not isinstance(v, int) or isinstance(v, bool) or v < 1]
        if bad_factors:
            raise MisconfigurationError(
                f"GradientAccumulationScheduler: accumulation factors must be ints >= 1; got {list(scheduling.values())}"
            )
        self.scheduling = dict(scheduling)
        self.scheduling.setdefault(0, 1)
        self.epochs = sorted(self.scheduling)
        self._applied: int | None = None

    def going_to_accumulate_grad_batches(self) -> bool:
        """Whether any epoch accumulates more than one batch."""
        return any(factor > 1 for factor in self.scheduling.values())

    def get_accumulate_grad_batches(self, epoch: int) -> int:
        """The factor for ``epoch``: that of the last scheduled epoch at or before it."""
        factor = 1
        for start in self.epochs:
            if epoch >= start:
                factor = self.scheduling[start]
        return factor

    def on_train_start(self, trainer: Trainer, pl_module: Module) -> None:
        if not pl_module.automatic_optimization:
            raise MisconfigurationError(
                "GradientAccumulationScheduler does not apply to manual optimization "
                f"({type(pl_module).__qualname__}.automatic_optimization is False): accumulate in training_step, "
                "or remove the callback"
            )
        current = trainer.accumulate_grad_batches
        if current != 1 and current != self._applied:
            raise MisconfigurationError(
                f"Trainer(accumulate_grad_batches={current}) and GradientAccumulationScheduler both set the "
                "accumulation; remove accumulate_grad_batches from the Trainer or remove the callback"
            )
        overridden = {"optimizer_step", "optimizer_zero_grad"} & trainer._module_hooks
        if overridden and self.going_to_accumulate_grad_batches():
            warnings.warn(
                f"{type(pl_module).__qualname__} overrides {' and '.join(sorted(overridden))}; with gradient "
                "accumulation they run once per optimizer step, not once per batch",
                EmberWarning,
                stacklevel=2,
            )
        # A run resumed mid-epoch starts without on_train_epoch_start: apply the epoch's factor now.
        self._apply(trainer)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: Module) -> None:
        self._apply(trainer)

    def _apply(self, trainer: Trainer) -> None:
        self._applied = self.get_accumulate_grad_batches(trainer.current_epoch)
        trainer.accumulate_grad_batches = self._applied
