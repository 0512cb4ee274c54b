"""StochasticWeightAveraging: average the weights of the last epochs, on Lightning's epoch schedule.

SWA (Izmailov et al., 2018) trains the last epochs at a constant or annealed
learning rate and averages the weights it passes through. Following
Lightning, from epoch ``swa_epoch_start`` on the optimizer's scheduler is
replaced by ``torch.optim.swa_utils.SWALR``, a snapshot of the weights is
averaged in at the start of each epoch, and when training ends the model
takes the average and its batch-norm statistics are recomputed on it. The
average, the snapshot count and the scheduler survive a resume.

Importing this module does not import torch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, Any

from ember.callback import Callback
from ember.errors import EmberWarning, MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ember.core.module import Module
    from ember.core.trainer import Trainer

AvgFn = Callable[["torch.Tensor", "torch.Tensor", "torch.Tensor"], "torch.Tensor"]


class StochasticWeightAveraging(Callback):
    """Average the weights seen at the start of each epoch from ``swa_epoch_start`` on.

    :param swa_lrs: the SWA learning rate: one float for every parameter group, or a list with one per group.
    :param swa_epoch_start: an int N starts SWA in the N-th epoch (1-based, so epoch index N - 1); a float
        in [0, 1] starts it at epoch index ``int(swa_epoch_start * max_epochs) - 1``.
    :param annealing_epochs: epochs over which SWALR moves the learning rate to ``swa_lrs``.
    :param annealing_strategy: ``"cos"`` or ``"linear"``.
    :param avg_fn: ``avg_fn(averaged, current, n_averaged) -> new average``; by default equal weights.
    :param device: where the average lives; None: where the model is.

    Works with one optimizer and at most one scheduler, which it replaces.
    """

    def __init__(
        self,
        swa_lrs: float | list[float],
        swa_epoch_start: int | float = 0.8,
        annealing_epochs: int = 10,
        annealing_strategy: str = "cos",
        avg_fn: AvgFn | None = None,
        device: torch.device | str | None = "cpu",
    ) -> None:
        _check_arguments(swa_lrs, swa_epoch_start, annealing_epochs, annealing_strategy, avg_fn, device)
        self._swa_lrs = swa_lrs
        self._swa_epoch_start = swa_epoch_start
        self._annealing_epochs = annealing_epochs
        self._annealing_strategy = annealing_strategy
        self._avg_fn = avg_fn or self.avg_fn
        self._device = device
        #: How many snapshots the average holds (a long tensor once SWA has started).
        self.n_averaged: torch.Tensor | None = None
        self._average: dict[str, torch.Tensor] | None = None
        self._initialized = False
        self._swa_scheduler: Any = None
        self._scheduler_state: dict[str, Any] | None = None
        self._init_n_averaged = 0
        self._latest_update_epoch = -1
        self._max_epochs = -1

    @property
    def swa_start(self) -> int:
        """The zero-based epoch whose start takes the first snapshot."""
        assert isinstance(self._swa_epoch_start, int), "resolved from a fraction when fit starts"
        return max(self._swa_epoch_start - 1, 0)

    @property
    def swa_end(self) -> float:
        """The zero-based epoch whose start takes the last snapshot (infinite with ``max_epochs=-1``)."""
        return math.inf if self._max_epochs == -1 else self._max_epochs - 1

    @staticmethod
    def avg_fn(averaged: torch.Tensor, current: torch.Tensor, n_averaged: torch.Tensor) -> torch.Tensor:
        """The running mean: each snapshot gets the same weight."""
        return averaged + (current - averaged) / (n_averaged + 1)

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: Trainer, pl_module: Module) -> None:
        if len(trainer.optimizers) != 1:
            raise MisconfigurationError(
                f"StochasticWeightAveraging works with 1 optimizer; configure_optimizers returned "
                f"{len(trainer.optimizers)}"
            )
        if len(trainer.lr_scheduler_configs) > 1:
            raise MisconfigurationError(
                f"StochasticWeightAveraging works with at most 1 lr scheduler; got {len(trainer.lr_scheduler_configs)}"
            )
        max_epochs = trainer.max_epochs if trainer.max_epochs is not None else -1
        if isinstance(self._swa_epoch_start, float):
            if max_epochs == -1:
                raise MisconfigurationError(
                    f"StochasticWeightAveraging(swa_epoch_start={self._swa_epoch_start}) is a fraction of max_epochs, "
                    "which is unlimited; give swa_epoch_start as an int"
                )
            self._swa_epoch_start = int(max_epochs * self._swa_epoch_start)
        self._max_epochs = max_epochs
        if self._scheduler_state is not None:
            # resumed after SWA began: the checkpoint's scheduler state is SWALR's, so SWALR must be in place
            # before the Trainer restores the optimizer and scheduler states
            self._start(trainer, pl_module)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: Module) -> None:
        epoch = trainer.current_epoch
        if not self.swa_start <= epoch <= self.swa_end:
            return
        if not self._initialized:
            self._start(trainer, pl_module)
        if epoch > self._latest_update_epoch:
            self._update(pl_module)
            self._latest_update_epoch = epoch

    def on_train_end(self, trainer: Trainer, pl_module: Module) -> None:
        if self._average is None or self.n_averaged is None or int(self.n_averaged) == 0:
            return
        import torch

        with torch.no_grad():
            for name, parameter in pl_module.named_parameters():
                parameter.detach().copy_(self._average[name].to(parameter.device))
        _recompute_batch_norm(trainer, pl_module)

    # ------------------------------------------------------------ checkpoints
    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            swa_lrs=self._swa_lrs,
            swa_epoch_start=self._swa_epoch_start,
            annealing_epochs=self._annealing_epochs,
            annealing_strategy=self._annealing_strategy,
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "n_averaged": 0 if self.n_averaged is None else int(self.n_averaged),
            "latest_update_epoch": self._latest_update_epoch,
            "scheduler_state": None if self._swa_scheduler is None else self._swa_scheduler.state_dict(),
            "average_model_state": self._average,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._init_n_averaged = state_dict["n_averaged"]
        self._latest_update_epoch = state_dict["latest_update_epoch"]
        self._scheduler_state = state_dict["scheduler_state"]
        self._average = state_dict["average_model_state"]
        self.n_averaged = None
        self._initialized = False

    # --------------------------------------------------------------- helpers
    def _start(self, trainer: Trainer, pl_module: Module) -> None:
        """Swap in SWALR (with its saved state on resume) and the snapshot counter."""
        import torch
        from torch.optim.swa_utils import SWALR

        from ember.core.optimizers import LRSchedulerConfig

        self._initialized = True
        optimizer = trainer.optimizers[0]
        groups = optimizer.param_groups
        lrs = [self._swa_lrs] * len(groups) if isinstance(self._swa_lrs, float) else list(self._swa_lrs)
        if len(lrs) != len(groups):
            raise MisconfigurationError(
                f"StochasticWeightAveraging(swa_lrs={self._swa_lrs}) has {len(lrs)} values for an optimizer with "
                f"{len(groups)} parameter groups; give one float or one per group"
            )
        for lr, group in zip(lrs, groups):
            group["initial_lr"] = lr
        scheduler = SWALR(
            optimizer,
            swa_lr=lrs,  # type: ignore[arg-type]
            anneal_epochs=self._annealing_epochs,
            anneal_strategy=self._annealing_strategy,  # type: ignore[arg-type]
            last_epoch=self._max_epochs if self._annealing_strategy == "cos" else -1,
        )
        if self._scheduler_state is not None:
            scheduler.load_state_dict(self._scheduler_state)
        self._swa_scheduler = scheduler
        configs = trainer.lr_scheduler_configs
        if configs:
            if configs[0].interval != "epoch" or configs[0].frequency != 1:
                warnings.warn(
                    f"StochasticWeightAveraging replaces the scheduler {type(configs[0].scheduler).__name__} "
                    f"(interval={configs[0].interval!r}, frequency={configs[0].frequency}) by SWALR, which steps "
                    "once every epoch",
                    EmberWarning,
                    stacklevel=2,
                )
            configs[0] = LRSchedulerConfig(scheduler)
        else:
            configs.append(LRSchedulerConfig(scheduler))
        if self.n_averaged is None:
            self.n_averaged = torch.tensor(self._init_n_averaged, dtype=torch.long)
        device = self._device if self._device is not None else pl_module.device
        if self._average is not None:
            self._average = {name: value.to(device) for name, value in self._average.items()}

    def _update(self, pl_module: Module) -> None:
        """Average the current parameters in."""
        import torch

        assert self.n_averaged is not None
        device = self._device if self._device is not None else pl_module.device
        with torch.no_grad():
            if self._average is None:
                self._average = {name: p.detach().to(device).clone() for name, p in pl_module.named_parameters()}
            for name, parameter in pl_module.named_parameters():
                averaged = self._average[name]
                current = parameter.detach().to(averaged.device)
                if int(self.n_averaged) == 0:
                    averaged.copy_(current)
                else:
                    averaged.copy_(self._avg_fn(averaged, current, self.n_averaged.to(averaged.device)))
        self.n_averaged += 1


def _recompute_batch_norm(trainer: Trainer, pl_module: Module) -> None:
    """Batch-norm statistics for the averaged weights: one pass of training_step over the training data.

    As in Lightning the pass runs ``training_step`` (no backward, no optimizer
    step); the statistics are plain averages over the batches (momentum None).
    What it logs is thrown away.
    """
    import torch

    from ember.core.loops.dispatch import transfer_batch
    from ember.core.metrics import MetricStore

    norms = [m for m in pl_module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    loaders = trainer._loaders.get("train")
    if not norms or not loaders:
        return
    if not pl_module.automatic_optimization:
        warnings.warn(
            "StochasticWeightAveraging does not recompute batch-norm statistics for a manually optimized model "
            "(its training_step steps the optimizer); call torch.optim.swa_utils.update_bn(loader, model) after fit",
            EmberWarning,
            stacklevel=2,
        )
        return
    momenta = {norm: norm.momentum for norm in norms}
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    count = trainer.num_training_batches
    modes = [(module, module.training) for module in pl_module.modules()]
    store, fx, trainer._metrics = trainer._metrics, trainer._fx, MetricStore()
    trainer._metrics.use("train", training=True)
    pl_module.train()
    try:
        with torch.no_grad():
            limit = None if count == math.inf else int(count)
            for batch_idx, batch in enumerate(islice(loaders[0], limit)):
                batch = transfer_batch(trainer, batch, 0)
                trainer._metrics.batch = batch
                trainer._fx = "training_step"
                with trainer._precision.forward_context():
                    pl_module.training_step(batch, batch_idx)  # type: ignore[operator]
    finally:
        trainer._metrics, trainer._fx = store, fx
        for norm, momentum in momenta.items():
            norm.momentum = momentum
        for module, training in modes:
            module.training = training


def _check_arguments(
    swa_lrs: Any, swa_epoch_start: Any, annealing_epochs: Any, annealing_strategy: Any, avg_fn: Any, device: Any
) -> None:
    import torch

    if isinstance(swa_epoch_start, bool) or not isinstance(swa_epoch_start, (int, float)):
        raise MisconfigurationError(
            f"StochasticWeightAveraging(swa_epoch_start={swa_epoch_start!r}): accepted is an int > 0 or a float in [0, 1]"
        )
    if (isinstance(swa_epoch_start, int) and swa_epoch_start < 1) or (
        isinstance(swa_epoch_start, float) and not 0 <= swa_epoch_start <= 1
    ):
        raise MisconfigurationError(
            f"StochasticWeightAveraging(swa_epoch_start={swa_epoch_start!r}): accepted is an int > 0 or a float in [0, 1]"
        )
    good_float = isinstance(swa_lrs, float) and swa_lrs > 0
    good_list = isinstance(swa_lrs, list) and all(isinstance(lr, float) and lr > 0 for lr in swa_lrs)
    if not (good_float or good_list):
        raise MisconfigurationError(
            f"StochasticWeightAveraging(swa_lrs={swa_lrs!r}): accepted is a positive float or a list of positive floats"
        )
    if isinstance(annealing_epochs, bool) or not isinstance(annealing_epochs, int) or annealing_epochs < 0:
        raise MisconfigurationError(
            f"StochasticWeightAveraging(annealing_epochs={annealing_epochs!r}): accepted is an int >= 0"
        )
    if annealing_strategy not in ("cos", "linear"):
        raise MisconfigurationError(
            f"StochasticWeightAveraging(annealing_strategy={annealing_strategy!r}): accepted are 'cos' and 'linear'"
        )
    if avg_fn is not None and not callable(avg_fn):
        raise MisconfigurationError(f"StochasticWeightAveraging(avg_fn={avg_fn!r}): accepted is a callable or None")
    if device is not None and not isinstance(device, (torch.device, str)):
        raise MisconfigurationError(
            f"StochasticWeightAveraging(device={device!r}): accepted is a torch.device, a str or None"
        )
