"""Fully sharded data parallel on FSDP2 (``torch.distributed.fsdp.fully_shard``): gloo on CPU, NCCL on CUDA.

Each rank holds 1/N of every parameter, gradient and optimizer state; a
shard unit's full parameters exist only while its forward or backward runs.
Processes are launched as for DDP (this strategy is a DDPStrategy that wraps
the model differently), and checkpoints are written by every rank into one
folder with torch.distributed.checkpoint (see ``ember.core.distributed_checkpoint``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import torch

from ember.core.strategies.ddp import DDPStrategy
from ember.errors import MisconfigurationError

#: The step methods that run a forward pass and so must gather the root's parameters when called.
_STEP_METHODS = ("training_step", "validation_step", "test_step", "predict_step")
#: fully_shard's reshard_after_forward for each of Lightning's strategy names. FULL_SHARD frees the gathered
#: weights after forward except the root's, which backward needs at once (as FSDP1 and fully_shard's default do).
_SHARDING = {"FULL_SHARD": None, "SHARD_GRAD_OP": False}
_STATE_DICT_TYPES = ("sharded", "full")

Policy = set[type[torch.nn.Module]] | Callable[[torch.nn.Module], bool] | None


class FSDPStrategy(DDPStrategy):
    """Shard parameters, gradients and optimizer states over the ranks with FSDP2.

    :param auto_wrap_policy: which submodules become their own shard unit: a set of module
        classes, or a callable ``module -> bool``; the root is always one.
    :param activation_checkpointing_policy: the same, for submodules whose activations are
        recomputed in backward instead of kept.
    :param cpu_offload: keep sharded parameters, gradients and optimizer state in CPU memory.
    :param mixed_precision: a ``torch.distributed.fsdp.MixedPrecisionPolicy`` overriding the one
        the Trainer's ``precision`` implies.
    :param sharding_strategy: ``"FULL_SHARD"`` (free full parameters after forward, but the root
        module's, which backward gathers first) or ``"SHARD_GRAD_OP"`` (keep them all until backward).
    :param state_dict_type: ``"sharded"`` (a folder that every rank writes) or ``"full"``
        (one ordinary file written by rank 0).
    :param timeout: how long a rank waits for the others in a collective (see DDPStrategy).
    :param kwargs: passed to every ``fully_shard`` call.
    """

    writes_distributed_checkpoints = True
    backward_collective = "FSDP's all-gather and reduce-scatter in backward"

    def __init__(
        self,
        auto_wrap_policy: Policy = None,
        activation_checkpointing_policy: Policy = None,
        cpu_offload: bool = False,
        mixed_precision: Any = None,
        sharding_strategy: str = "FULL_SHARD",
        state_dict_type: str = "sharded",
        timeout: timedelta | float | None = None,
        **kwargs: Any,
    ) -> None:
        if sharding_strategy not in _SHARDING:
            raise MisconfigurationError(f"sharding_strategy={sharding_strategy!r}; accepted are {sorted(_SHARDING)}")
        if state_dict_type not in _STATE_DICT_TYPES:
            raise MisconfigurationError(f"state_dict_type={state_dict_type!r}; accepted are {_STATE_DICT_TYPES}")
        self.auto_wrap_policy = _as_predicate(auto_wrap_policy, "auto_wrap_policy")
        self.activation_checkpointing_policy = _as_predicate(
            activation_checkpointing_policy, "activation_checkpointing_policy"
        )
        self.cpu_offload = bool(cpu_offload)
        self.mixed_precision = mixed_precision
        self.reshard_after_forward = _SHARDING[sharding_strategy]
        self.state_dict_type = state_dict_type
        self.writes_distributed_checkpoints = state_dict_type == "sharded"
        self.fully_shard_kwargs = kwargs
        self._mesh: Any = None  # 1-D over all ranks; ModelParallelStrategy shows its 2-D mesh as device_mesh
        super().__init__("cpu", [0], timeout=timeout)

    def connect_devices(self, device_type: str, parallel_devices: list[int], num_nodes: int) -> None:
        """Take the Trainer's ``accelerator``, ``devices`` and ``num_nodes`` (a strategy instance names none)."""
        self.device_type, self.parallel_devices, self.num_nodes = device_type, parallel_devices, num_nodes
        self.root_device = self._device_for(self._local_rank)

    # ------------------------------------------------------------------ setup
    def setup_environment(self) -> None:
        from torch.distributed.device_mesh import init_device_mesh

        super().setup_environment()
        self._mesh = init_device_mesh(self.root_device.type, (self.world_size,))

    def setup_module(self, module: torch.nn.Module) -> torch.nn.Module:
        """Shard each unit the policy names, then the root; materialise a model built on the meta device."""
        from torch.distributed.fsdp import FSDPModule, fully_shard, register_fsdp_forward_method

        on_meta = any(tensor.is_meta for tensor in _tensors(module))
        if not on_meta:
            module.to(self.root_device)
        if not isinstance(module, FSDPModule):  # ModelParallelStrategy's users shard in configure_model
            if self.activation_checkpointing_policy is not None:
                for child in _matching(module, self.activation_checkpointing_policy):
                    _checkpoint_activations(child)
            options = self._fully_shard_options(module)
            if self.auto_wrap_policy is not None:
                for child in _matching(module, self.auto_wrap_policy):
                    fully_shard(child, **options)
            fully_shard(module, **options)
        if on_meta:
            _materialize(module, self.root_device)
        for name in _STEP_METHODS:
            if callable(getattr(module, name, None)):
                register_fsdp_forward_method(module, name)
        self.model = module
        return module

    def prepare_micro_batch(self, steps: bool) -> None:
        """Between accumulated batches, keep gradients unreduced and parameters gathered; sync on the last."""
        from torch.distributed.fsdp import FSDPModule

        if isinstance(self.model, FSDPModule):
            self.model.set_requires_gradient_sync(steps)
            self.model.set_reshard_after_backward(steps)

    def _fully_shard_options(self, module: torch.nn.Module) -> dict[str, Any]:
        from torch.distributed.fsdp import CPUOffloadPolicy, OffloadPolicy

        options: dict[str, Any] = {
            "mesh": self._mesh,
            "reshard_after_forward": self.reshard_after_forward,
            "mp_policy": self.mixed_precision or _mixed_precision(_precision_of(module)),
            "offload_policy": CPUOffloadPolicy(pin_memory=self.root_device.type == "cuda")
            if self.cpu_offload
            else OffloadPolicy(),
        }
        return {**options, **self.fully_shard_kwargs}

    # ------------------------------------------------------------ checkpoints
    def module_state_dict(self, module: torch.nn.Module) -> dict[str, Any]:
        """Sharded DTensors for a distributed checkpoint; the full weights on rank 0 for ``state_dict_type="full"``."""
        if self.writes_distributed_checkpoints:
            return module.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_model_state_dict(module, options=options)

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """Keyed by parameter name, so a different number of ranks can load it; full and numbered for "full"."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        from ember.core.distributed_checkpoint import numbered_optimizer_state

        assert self.model is not None
        if self.writes_distributed_checkpoints:
            return get_optimizer_state_dict(self.model, optimizer)  # type: ignore[return-value]
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_optimizer_state_dict(self.model, optimizer, options=options)
        return numbered_optimizer_state(state) if state else {}  # type: ignore[arg-type]

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        """Shard a full (numbered) optimizer state, as an ordinary checkpoint file holds it, over the ranks."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        from ember.core.distributed_checkpoint import named_optimizer_state

        assert self.model is not None
        named = named_optimizer_state(state, self.model, optimizer)
        options = StateDictOptions(full_state_dict=True)
        set_optimizer_state_dict(self.model, optimizer, named, options=options)  # type: ignore[arg-type]

    def teardown(self) -> None:
        """Keep the process group and the sharded model: ``trainer.save_checkpoint`` after fit needs every rank.

        The group is destroyed when the interpreter exits instead: left to die with the process, gloo's
        threads can abort it (``terminate called without an active exception``) after a finished run.
        """
        import atexit

        import torch.distributed as dist

        if dist.is_initialized() and not getattr(self, "_destroy_at_exit", False):
            self._destroy_at_exit = True
            atexit.register(_destroy_process_group)


def _destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _as_predicate(policy: Any, name: str) -> Callable[[torch.nn.Module], bool] | None:
    if policy is None:
        return None
    if isinstance(policy, (set, frozenset, list, tuple)) and all(
        isinstance(kind, type) and issubclass(kind, torch.nn.Module) for kind in policy
    ):
        classes = tuple(policy)
        return lambda module: isinstance(module, classes)
    if callable(policy) and not isinstance(policy, type):
        return policy  # type: ignore[no-any-return]
    raise MisconfigurationError(
        f"{name}={policy!r}; accepted are a set of torch.nn.Module classes or a callable module -> bool"
    )


def _matching(root: torch.nn.Module, predicate: Callable[[torch.nn.Module], bool]) -> list[torch.nn.Module]:
    """Submodules (not the root) the predicate selects, innermost first, as fully_shard must be applied."""
    found = [module for module in root.modules() if module is not root and predicate(module)]
    return list(reversed(found))


def _tensors(module: torch.nn.Module) -> Iterable[torch.Tensor]:
    yield from module.parameters()
    yield from module.buffers()


def _materialize(module: torch.nn.Module, device: torch.device) -> None:
    """Allocate this rank's shards of a meta-device model and initialise them with each submodule's reset_parameters."""
    module.to_empty(device=device)
    uninitialised = []
    for name, child in module.named_modules():
        own = list(child.parameters(recurse=False)) + list(child.buffers(recurse=False))
        if not own:
            continue
        reset = getattr(child, "reset_parameters", None)
        if callable(reset):
            with torch.no_grad():
                reset()
        else:
            uninitialised.append(name or type(child).__name__)
    if uninitialised:
        raise MisconfigurationError(
            f"the model was built on the meta device, but these modules have no reset_parameters() to initialise "
            f"their weights with: {uninitialised}; give them one, or build them on a real device"
        )


def _checkpoint_activations(module: torch.nn.Module) -> None:
    """Recompute ``module``'s activations in backward; its parameter names stay as they were."""
    from torch.utils.checkpoint import checkpoint

    forward = module.forward

    @functools.wraps(forward)
    def recomputed(*args: Any, **kwargs: Any) -> Any:
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)

    module.forward = recomputed  # type: ignore[method-assign]


def _precision_of(module: torch.nn.Module) -> str:
    trainer = getattr(module, "_trainer", None) or getattr(module, "trainer", None)
    precision = getattr(trainer, "_precision", None)
    return str(getattr(precision, "value", "32-true"))


def _mixed_precision(precision: str) -> Any:
    """FSDP2's policy for a ``precision`` flag: gather parameters in the low dtype, reduce gradients in float32."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if precision == "bf16-mixed":
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    if precision == "16-mixed":
        return MixedPrecisionPolicy(param_dtype=torch.float16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()
