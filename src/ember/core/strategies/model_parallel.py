"""Tensor parallelism with FSDP2 on a 2-D DeviceMesh: the model decides how it is split, in ``configure_model``.

The ranks form a ``(data_parallel, tensor_parallel)`` grid. Ranks along the
tensor-parallel axis hold parts of one model replica and so read the same
batches; ranks along the data-parallel axis hold different replicas (sharded
by FSDP) and read different batches. The model gets the mesh as
``self.device_mesh`` in ``configure_model`` and applies
``torch.distributed.tensor.parallel.parallelize_module`` and ``fully_shard``
itself, as in Lightning.
"""

from __future__ import annotations

from typing import Any

import torch

from ember.core.strategies.fsdp import FSDPStrategy
from ember.errors import MisconfigurationError


class ModelParallelStrategy(FSDPStrategy):
    """A 2-D DeviceMesh handed to ``configure_model``; checkpoints are distributed (DCP folders).

    :param data_parallel_size: replicas; ``"auto"``: the number of nodes.
    :param tensor_parallel_size: ranks per replica; ``"auto"``: the devices per node.
    :param save_distributed_checkpoint: False writes one ordinary file (rank 0 gathers the weights).
    """

    def __init__(
        self,
        data_parallel_size: int | str = "auto",
        tensor_parallel_size: int | str = "auto",
        save_distributed_checkpoint: bool = True,
    ) -> None:
        for name, value in (("data_parallel_size", data_parallel_size), ("tensor_parallel_size", tensor_parallel_size)):
            if value != "auto" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise MisconfigurationError(f"{name}={value!r}; accepted are 'auto' or an int >= 1")
        super().__init__(state_dict_type="sharded" if save_distributed_checkpoint else "full")
        self.device_mesh: Any = None
        self.data_parallel_size = data_parallel_size
        self.tensor_parallel_size = tensor_parallel_size

    def _sizes(self) -> tuple[int, int]:
        data = self.num_nodes if self.data_parallel_size == "auto" else int(self.data_parallel_size)
        tensor = len(self.parallel_devices) if self.tensor_parallel_size == "auto" else int(self.tensor_parallel_size)
        if data * tensor != self.world_size:
            raise MisconfigurationError(
                f"ModelParallelStrategy(data_parallel_size={self.data_parallel_size!r}, tensor_parallel_size="
                f"{self.tensor_parallel_size!r}) makes {data} x {tensor} = {data * tensor} ranks, but the run has "
                f"{self.world_size} (devices x num_nodes); choose sizes whose product is {self.world_size}"
            )
        return data, tensor

    def setup_environment(self) -> None:
        from torch.distributed.device_mesh import init_device_mesh

        data, tensor = self._sizes()  # before any process group, so a bad size fails fast
        super(FSDPStrategy, self).setup_environment()
        names = ("data_parallel", "tensor_parallel")
        self.device_mesh = init_device_mesh(self.root_device.type, (data, tensor), mesh_dim_names=names)
        self._mesh = self.device_mesh["data_parallel"]

    def setup_module(self, module: torch.nn.Module) -> torch.nn.Module:
        """Shard the root over the data-parallel axis (the model has sharded its parts in configure_model)."""
        from torch.distributed.fsdp import FSDPModule, fully_shard

        if not isinstance(module, FSDPModule):
            on_meta = any(tensor.is_meta for tensor in module.parameters())
            if not on_meta:
                module.to(self.root_device)
            fully_shard(module, **self._fully_shard_options(module))
        return super().setup_module(module)

    @property
    def distributed_sampler_kwargs(self) -> dict[str, int]:
        """Ranks of one tensor-parallel group read the same batches."""
        mesh = self.device_mesh
        if mesh is None:
            return super().distributed_sampler_kwargs
        axis = mesh["data_parallel"]
        return {"num_replicas": axis.size(), "rank": axis.get_local_rank()}
