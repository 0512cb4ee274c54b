"""The user's model base: a ``torch.nn.Module`` with training steps, optimizers and ``self.log``."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Generator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ember.core.hparams import HyperparametersMixin
from ember.core.module_hooks import ModuleHooks
from ember.errors import MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer


class Module(ModuleHooks, HyperparametersMixin, torch.nn.Module):
    """Base class for models: implement ``training_step`` and ``configure_optimizers``.

    Everything Lightning's ``LightningModule`` offers a training step is here
    under the same name: ``self.log``, ``self.optimizers()``,
    ``self.manual_backward``, ``self.trainer``, ``self.current_epoch`` ...
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._trainer: Trainer | None = None
        self._automatic_optimization = True
        self._device = torch.device("cpu")
        self._example_input_array: Any = None
        self._toggled: dict[torch.nn.Parameter, bool] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles of a model leave its Trainer behind."""
        state = super().__getstate__()
        return {**state, "_trainer": None}

    # ------------------------------------------------------------------ trainer
    @property
    def trainer(self) -> Trainer:
        """The Trainer running this model; an error when there is none."""
        if self._trainer is None:
            raise RuntimeError(f"{type(self).__qualname__} is not attached to a Trainer")
        return self._trainer

    @trainer.setter
    def trainer(self, trainer: Trainer | None) -> None:
        self._trainer = trainer

    @property
    def example_input_array(self) -> Any:
        """An example input for the model summary's in/out sizes and ``log_graph``; a subclass may make it a property."""
        return self._example_input_array

    @example_input_array.setter
    def example_input_array(self, value: Any) -> None:
        self._example_input_array = value

    @property
    def automatic_optimization(self) -> bool:
        """False when ``training_step`` calls the optimizers itself (manual optimization)."""
        return self._automatic_optimization

    @automatic_optimization.setter
    def automatic_optimization(self, value: bool) -> None:
        self._automatic_optimization = bool(value)

    @property
    def device(self) -> torch.device:
        """Where the parameters are (the Trainer's device before the model has any)."""
        for parameter in self.parameters():
            return parameter.device
        for buffer in self.buffers():
            return buffer.device
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        for tensor in self.parameters():
            return tensor.dtype
        return torch.get_default_dtype()

    @property
    def device_mesh(self) -> Any:
        """The DeviceMesh of a ModelParallelStrategy run (set up before ``configure_model``); None otherwise."""
        strategy = self._trainer.strategy if self._trainer is not None else None
        return getattr(strategy, "device_mesh", None)

    @property
    def current_epoch(self) -> int:
        """The Trainer's current epoch, 0 without a Trainer."""
        return self._trainer.current_epoch if self._trainer is not None else 0

    @property
    def global_step(self) -> int:
        """Optimizer steps taken so far, 0 without a Trainer."""
        return self._trainer.global_step if self._trainer is not None else 0

    @property
    def logger(self) -> Any:
        """The Trainer's first logger, or None."""
        return self._trainer.logger if self._trainer is not None else None

    @property
    def loggers(self) -> list[Any]:
        return self._trainer.loggers if self._trainer is not None else []

    def print(self, *args: Any, **kwargs: Any) -> None:
        """``print`` on the global-zero process only."""
        if self._trainer is None or self._trainer.is_global_zero:
            builtins.print(*args, **kwargs)

    # ----------------------------------------------- processes and freezing (Lightning's names)
    @property
    def global_rank(self) -> int:
        """This process's rank among all processes, 0 without a Trainer."""
        return self._trainer.global_rank if self._trainer is not None else 0

    @property
    def local_rank(self) -> int:
        """This process's rank on its machine, 0 without a Trainer."""
        return self._trainer.local_rank if self._trainer is not None else 0

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    def all_gather(self, data: Any, group: Any = None, sync_grads: bool = False) -> Any:
        """``data`` (tensors or numbers, possibly nested) from every process, stacked on a new first dimension."""
        from lightning_utilities.core.apply_func import apply_to_collection

        strategy = self._trainer.strategy if self._trainer is not None else None

        def gather(value: Any) -> torch.Tensor:
            tensor = torch.as_tensor(value, device=self.device)
            return strategy.all_gather(tensor, sync_grads=sync_grads) if strategy is not None else tensor

        return apply_to_collection(data, (torch.Tensor, int, float), gather)

    def freeze(self) -> None:
        """No gradients for any parameter, and eval mode (e.g. a model used for inference only)."""
        for parameter in self.parameters():
            parameter.requires_grad = False
        self.eval()

    def unfreeze(self) -> None:
        """Gradients for every parameter again, and train mode."""
        for parameter in self.parameters():
            parameter.requires_grad = True
        self.train()

    # ------------------------------------------------------------------ logging
    def log(
        self,
        name: str,
        value: Any,
        prog_bar: bool = False,
        logger: bool | None = None,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        reduce_fx: str | Callable[..., Any] = "mean",
        enable_graph: bool = False,
        sync_dist: bool = False,
        sync_dist_group: Any = None,
        add_dataloader_idx: bool = True,
        batch_size: int | None = None,
        metric_attribute: str | None = None,
        rank_zero_only: bool = False,
    ) -> None:
        """Log a scalar for the loggers, the progress bar and callbacks such as ModelCheckpoint.

        :param on_step: keep the value of each step (default: True in training steps).
        :param on_epoch: reduce the values over the epoch with ``reduce_fx`` (default: True in evaluation).
        :param prog_bar: show it in the progress bar.
        :param logger: send it to the loggers (default True).
        :param reduce_fx: "mean" (weighted by ``batch_size``), "sum", "max", "min" or a callable.
        :param sync_dist: reduce it over processes under a distributed strategy.
        :param batch_size: weight for the mean; inferred from the batch when not given.
        :param add_dataloader_idx: suffix ``/dataloader_idx_N`` with several evaluation dataloaders.
        """
        trainer = self._trainer
        if trainer is None:
            import warnings

            from ember.errors import EmberWarning

            warnings.warn(
                f"self.log({name!r}) was called without a Trainer; nothing was logged", EmberWarning, stacklevel=2
            )
            return
        trainer._metrics.log(  # positionally: this runs every step, and keywords cost a little more to pass
            trainer._fx,
            name,
            value,
            prog_bar,
            logger,
            on_step,
            on_epoch,
            reduce_fx,
            sync_dist and not rank_zero_only,
            batch_size,
            add_dataloader_idx,
        )

    def log_dict(self, dictionary: Mapping[str, Any], **kwargs: Any) -> None:
        """``self.log`` for each item of ``dictionary`` with the same options."""
        for name, value in dictionary.items():
            self.log(name, value, **kwargs)

    # -------------------------------------------------------------------- steps
    def predict_step(self, *args: Any, **kwargs: Any) -> Any:
        """The model's output for the batch, ``self(batch)``; override it to predict something else."""
        batch = kwargs.get("batch", args[0] if args else None)
        return self(batch)

    # --------------------------------------------------------------- optimizers
    def optimizers(self, use_pl_optimizer: bool = True) -> Any:
        """The optimizers from ``configure_optimizers``: one, or a list when there are several."""
        optimizers = self.trainer.optimizers if not use_pl_optimizer else self.trainer._stepping_optimizers
        return optimizers[0] if len(optimizers) == 1 else list(optimizers)

    def lr_schedulers(self) -> Any:
        """The schedulers from ``configure_optimizers``: None, one, or a list."""
        schedulers = [config.scheduler for config in self.trainer.lr_scheduler_configs]
        if not schedulers:
            return None
        return schedulers[0] if len(schedulers) == 1 else schedulers

    def manual_backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        """Backward pass for manual optimization: fires the backward hooks and handles precision scaling."""
        if self.automatic_optimization:
            raise MisconfigurationError(
                "manual_backward() is for manual optimization; set self.automatic_optimization = False"
            )
        self.trainer._optimization.backward(loss, *args, **kwargs)

    def toggle_optimizer(self, optimizer: Any) -> None:
        """Freeze every parameter that ``optimizer`` does not train, until ``untoggle_optimizer``."""
        own = {id(p) for group in _unwrap(optimizer).param_groups for p in group["params"]}
        for other in self.trainer.optimizers:
            for group in other.param_groups:
                for param in group["params"]:
                    if id(param) not in own and param not in self._toggled:
                        self._toggled[param] = param.requires_grad
                        param.requires_grad = False

    def untoggle_optimizer(self, optimizer: Any) -> None:
        """Restore the ``requires_grad`` flags that ``toggle_optimizer`` changed."""
        for param, requires_grad in self._toggled.items():
            param.requires_grad = requires_grad
        self._toggled.clear()

    @contextmanager
    def toggled_optimizer(self, optimizer: Any) -> Generator[None, None, None]:
        """``toggle_optimizer`` for the duration of a ``with`` block."""
        self.toggle_optimizer(optimizer)
        try:
            yield
        finally:
            self.untoggle_optimizer(optimizer)

    def clip_gradients(
        self,
        optimizer: Any,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip the gradients of ``optimizer``'s parameters by norm (default) or by value."""
        if gradient_clip_val is None or gradient_clip_val == 0:
            return
        algorithm = gradient_clip_algorithm or "norm"
        if algorithm not in ("norm", "value"):
            raise MisconfigurationError(f"gradient_clip_algorithm={algorithm!r}: accepted are 'norm' and 'value'")
        optimizer = _unwrap(optimizer)
        if self._trainer is not None:
            self._trainer._precision.unscale_gradients(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if algorithm == "norm":
            torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_value_(params, gradient_clip_val)

    # -------------------------------------------------------------- checkpoints
    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | Path,
        map_location: Any = None,
        strict: bool = True,
        weights_only: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Build this model from a checkpoint's hyperparameters (``kwargs`` override them) and load its weights."""
        from ember.core.checkpoint import load_module_from_checkpoint

        return load_module_from_checkpoint(cls, checkpoint_path, map_location, strict, weights_only, kwargs)


def _unwrap(optimizer: Any) -> torch.optim.Optimizer:
    return getattr(optimizer, "optimizer", optimizer)
