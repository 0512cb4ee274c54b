"""One process, one device: the Strategy interface with nothing to communicate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class Strategy:
    """Where a run executes and how its processes talk; the single-process case.

    Callbacks and plugins use ``barrier``, ``broadcast``, ``reduce``,
    ``reduce_boolean_decision`` and ``all_gather`` through
    ``trainer.strategy``; on one process they return their input.

    As in Lightning, the strategy holds the run's model, optimizers, scheduler
    configs and precision; ``trainer.optimizers``, ``trainer.lr_scheduler_configs``,
    ``trainer.lightning_module`` and ``trainer.model`` are views of these, so
    assigning through either side is what the loops use. Subclasses call
    ``super().__init__`` to get them.
    """

    launches_processes = False

    def __init__(self, device: torch.device) -> None:
        self.root_device = device
        self.lightning_module: Any = None
        self._model: torch.nn.Module | None = getattr(self, "_model", None)
        self.optimizers: list[torch.optim.Optimizer] = []
        self.lr_scheduler_configs: list[Any] = []
        #: The run's precision (ember's :class:`~ember.core.precision.Precision`), set by the Trainer.
        self.precision_plugin: Any = None

    # ------------------------------------------------------------ run state
    @property
    def model(self) -> torch.nn.Module | None:
        """What the loops run: the wrapped model (DDP, FSDP ...) once set up, else the LightningModule."""
        return self._model if self._model is not None else self.lightning_module

    @model.setter
    def model(self, model: torch.nn.Module | None) -> None:
        self._model = model

    # ------------------------------------------------------------- topology
    @property
    def global_rank(self) -> int:
        return 0

    @property
    def local_rank(self) -> int:
        return 0

    @property
    def node_rank(self) -> int:
        return 0

    @property
    def world_size(self) -> int:
        return 1

    @property
    def num_processes(self) -> int:
        return 1

    @property
    def is_global_zero(self) -> bool:
        return self.global_rank == 0

    # --------------------------------------------------------- communication
    def barrier(self, name: str | None = None) -> None:
        """Wait until every process reaches this point."""

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        """``obj`` as process ``src`` holds it, on every process."""
        return obj

    def reduce(self, tensor: torch.Tensor, reduce_op: str = "mean") -> torch.Tensor:
        """``tensor`` reduced over processes with "mean", "sum", "max" or "min"."""
        return tensor

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:  # noqa: A002
        """True when every process (``all=True``) or any process (``all=False``) decided True."""
        return bool(decision)

    def all_gather(self, tensor: torch.Tensor, sync_grads: bool = False) -> torch.Tensor:
        """``tensor`` from every process, stacked along a new first dimension (as is on one process)."""
        return tensor

    #: What backward waits for on other processes, as :meth:`collective_failed` names it.
    backward_collective = "backward"

    def collective_failed(self, what: str, error: BaseException) -> None:
        """Called with an error raised where processes communicate (``what``): raise a clearer one, or return."""

    # ----------------------------------------------------------------- setup
    def launch(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``function`` in this process (distributed strategies start the others first)."""
        return function(*args, **kwargs)

    def setup_environment(self) -> None:
        """Prepare the process (process group, device) before the model is built."""
        if self.root_device.type == "cuda":
            torch.cuda.set_device(self.root_device)

    def setup_module(self, module: torch.nn.Module) -> torch.nn.Module:
        """Move the model to the device; return what the loops call (a wrapper under DDP)."""
        module.to(self.root_device)
        return module

    def training_step_function(self, module: Any) -> Callable[..., Any]:
        """What the loops call as ``training_step`` (DDP routes it through its wrapper)."""
        return module.training_step  # type: ignore[no-any-return]

    def prepare_micro_batch(self, steps: bool) -> None:
        """Before each batch of gradient accumulation: ``steps`` is whether the optimizer steps after it."""

    def process_dataloader(self, loader: Any, kind: str, use_distributed_sampler: bool) -> Any:
        """The loader each process iterates (distributed strategies give each rank its shard)."""
        return loader

    def on_exception(self, exception: BaseException) -> None:
        """Called when the run raised, before the exception propagates."""

    # ------------------------------------------------------------ checkpoints
    #: Whether save_checkpoint writes a folder that every rank writes its shards into, instead of one file.
    writes_distributed_checkpoints = False

    def module_state_dict(self, module: torch.nn.Module) -> dict[str, Any]:
        """The model's weights as a checkpoint stores them (sharded strategies gather or keep shards)."""
        return module.state_dict()

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """An optimizer's state as a checkpoint stores it."""
        return optimizer.state_dict()

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        """Restore what :meth:`optimizer_state` of an ordinary checkpoint file returned."""
        optimizer.load_state_dict(state)

    def teardown(self) -> None:
        """Release what ``setup_environment`` took."""


class SingleDeviceStrategy(Strategy):
    """The default: everything in this process, on one device."""
