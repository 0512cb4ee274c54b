"""The Trainer state callbacks and plugins read, under Lightning's names."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from ember.callback import Callback, Checkpoint
from ember.core.state import RunningStage

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ember.core.metrics import MetricStore
    from ember.core.module import Module
    from ember.core.precision import Precision
    from ember.core.state import FitProgress, TrainerState
    from ember.core.strategies.single import Strategy


class TrainerProperties:
    """Read-only views of a Trainer's progress, metrics, callbacks, loggers and processes."""

    state: TrainerState
    fit_progress: FitProgress
    strategy: Strategy
    callbacks: list[Callback]
    loggers: list[Any]
    _metrics: MetricStore
    _default_root_dir: str

    # ------------------------------------------------- the strategy's state
    # Views of what the strategy holds (as in Lightning), so an assignment through
    # trainer.X or trainer.strategy.X is the one the loops see.
    @property
    def lightning_module(self) -> Module | None:
        """The Module being run (unwrapped)."""
        return self.strategy.lightning_module  # type: ignore[no-any-return]

    @lightning_module.setter
    def lightning_module(self, module: Module | None) -> None:
        self.strategy.lightning_module = module

    @property
    def model(self) -> torch.nn.Module | None:
        """What the loops run: the Module, or the strategy's wrapper around it (DDP)."""
        return self.strategy.model

    @model.setter
    def model(self, model: torch.nn.Module | None) -> None:
        self.strategy.model = model

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """The optimizers from configure_optimizers (``trainer.strategy.optimizers``)."""
        return self.strategy.optimizers

    @optimizers.setter
    def optimizers(self, optimizers: list[torch.optim.Optimizer]) -> None:
        self.strategy.optimizers = optimizers

    @property
    def lr_scheduler_configs(self) -> list[Any]:
        """The schedulers and when to step them (``trainer.strategy.lr_scheduler_configs``)."""
        return self.strategy.lr_scheduler_configs

    @lr_scheduler_configs.setter
    def lr_scheduler_configs(self, configs: list[Any]) -> None:
        self.strategy.lr_scheduler_configs = configs

    @property
    def _stepping_optimizers(self) -> list[Any]:
        """The optimizers as the model sees them (``step()`` runs ember's step path); follows a replaced list."""
        stepping: list[Any] = self.__dict__.get("_stepping", [])
        optimizers = self.strategy.optimizers
        optimization = self.__dict__.get("_optimization")
        if optimization is not None and [wrapper.optimizer for wrapper in stepping] != optimizers:
            from ember.core.optimizers import SteppingOptimizer

            stepping = [SteppingOptimizer(optimizer, optimization.optimizer_step) for optimizer in optimizers]
            self.__dict__["_stepping"] = stepping
        return stepping

    @_stepping_optimizers.setter
    def _stepping_optimizers(self, stepping: list[Any]) -> None:
        self.__dict__["_stepping"] = stepping

    @property
    def _precision(self) -> Precision:
        return self.strategy.precision_plugin  # type: ignore[no-any-return]

    @_precision.setter
    def _precision(self, precision: Precision) -> None:
        self.strategy.precision_plugin = precision

    # ------------------------------------------------------------- progress
    @property
    def current_epoch(self) -> int:
        """The epoch running now (0-based); after fit, the number of epochs run."""
        return self.fit_progress.epoch

    @property
    def global_step(self) -> int:
        """Optimizer steps taken so far."""
        return self.fit_progress.global_step

    @property
    def training(self) -> bool:
        return self.state.stage == RunningStage.TRAINING

    @property
    def validating(self) -> bool:
        return self.state.stage == RunningStage.VALIDATING

    @property
    def testing(self) -> bool:
        return self.state.stage == RunningStage.TESTING

    @property
    def predicting(self) -> bool:
        return self.state.stage == RunningStage.PREDICTING

    @property
    def estimated_stepping_batches(self) -> float:
        """Optimizer steps fit will take, from max_steps or epochs, batches and accumulation."""
        max_steps = getattr(self, "max_steps", -1)
        if max_steps not in (-1, None):
            return float(max_steps)
        max_epochs = getattr(self, "max_epochs", None)
        if max_epochs in (-1, None):
            return math.inf
        if "train" not in getattr(self, "_loaders", {}):
            self._load_loaders("train")  # type: ignore[attr-defined]
        batches = getattr(self, "num_training_batches", math.inf)
        if batches == math.inf:
            return math.inf
        return float(math.ceil(batches / getattr(self, "accumulate_grad_batches", 1)) * max(max_epochs, 1))

    # ---------------------------------------------------------------- data
    @property
    def train_dataloader(self) -> Any:
        """The training dataloader fit iterates (after the strategy's changes), or None before fit loads it."""
        return self._dataloaders("train")

    @property
    def val_dataloaders(self) -> Any:
        """The validation dataloader, a list of them when there are several, or None."""
        return self._dataloaders("val")

    @property
    def test_dataloaders(self) -> Any:
        return self._dataloaders("test")

    @property
    def predict_dataloaders(self) -> Any:
        return self._dataloaders("predict")

    def _dataloaders(self, kind: str) -> Any:
        loaders = getattr(self, "_loaders", {}).get(kind)
        if not loaders:
            return None
        return loaders[0] if len(loaders) == 1 else list(loaders)

    # -------------------------------------------------------------- metrics
    @property
    def callback_metrics(self) -> dict[str, torch.Tensor]:
        """Everything logged, as tensors, including the running epoch's reductions: what monitors read."""
        return self._metrics.callback_metrics()

    @property
    def logged_metrics(self) -> dict[str, torch.Tensor]:
        """What was sent (or is due) to the loggers."""
        return dict(self._metrics.logged)

    @property
    def progress_bar_metrics(self) -> dict[str, float]:
        """What ``self.log(..., prog_bar=True)`` logged, as numbers."""
        return self._metrics.progress_bar

    # ------------------------------------------------------------ callbacks
    @property
    def checkpoint_callbacks(self) -> list[Checkpoint]:
        return [c for c in self.callbacks if isinstance(c, Checkpoint)]

    @property
    def checkpoint_callback(self) -> Checkpoint | None:
        """The first checkpoint callback (ModelCheckpoint or OnExceptionCheckpoint), if any."""
        found = [
            c for c in self.checkpoint_callbacks if type(c).__name__ == "ModelCheckpoint"
        ] or self.checkpoint_callbacks
        return found[0] if found else None

    @property
    def early_stopping_callbacks(self) -> list[Callback]:
        from ember.plugins.early_stopping import EarlyStopping

        return [c for c in self.callbacks if isinstance(c, EarlyStopping)]

    @property
    def early_stopping_callback(self) -> Callback | None:
        found = self.early_stopping_callbacks
        return found[0] if found else None

    @property
    def progress_bar_callback(self) -> Callback | None:
        """The progress bar in use, or None when progress bars are off."""
        from ember.plugins.progress_bar import ProgressBar

        return next((c for c in self.callbacks if isinstance(c, ProgressBar)), None)

    # -------------------------------------------------------------- loggers
    @property
    def logger(self) -> Any:
        """The first logger, or None."""
        return self.loggers[0] if self.loggers else None

    @logger.setter
    def logger(self, logger: Any) -> None:
        self.loggers = [] if logger is None else [logger]

    @property
    def default_root_dir(self) -> str:
        """Where logs and checkpoints go when no other path is given (the working directory by default)."""
        return self._default_root_dir

    @property
    def log_dir(self) -> str:
        """The first logger's folder (``.../version_N``), or default_root_dir without a logger."""
        if self.loggers:
            folder = getattr(self.loggers[0], "log_dir", None) or getattr(self.loggers[0], "save_dir", None)
            if folder is not None:
                return os.fspath(folder)
        return self._default_root_dir

    # ------------------------------------------------------------ processes
    @property
    def is_global_zero(self) -> bool:
        """True on the process that writes checkpoints, logs and progress bars."""
        return self.strategy.is_global_zero

    @property
    def global_rank(self) -> int:
        return self.strategy.global_rank

    @property
    def local_rank(self) -> int:
        return self.strategy.local_rank

    @property
    def node_rank(self) -> int:
        return self.strategy.node_rank

    @property
    def world_size(self) -> int:
        return self.strategy.world_size

    @property
    def num_nodes(self) -> int:
        return getattr(self.strategy, "num_nodes", 1)

    @property
    def num_devices(self) -> int:
        return len(self.device_ids)

    @property
    def device_ids(self) -> list[int]:
        return list(getattr(self.strategy, "parallel_devices", None) or [self.strategy.root_device.index or 0])

    @property
    def precision(self) -> str:
        """The precision flag in canonical form, e.g. ``"bf16-mixed"``."""
        return getattr(self, "_precision_flag", "32-true")
