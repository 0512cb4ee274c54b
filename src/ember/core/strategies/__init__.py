"""Where and on how many processes a run executes; chosen from the accelerator/strategy/devices flags."""

from __future__ import annotations

from typing import Any

import torch

from ember.core.strategies.single import SingleDeviceStrategy, Strategy
from ember.errors import MisconfigurationError

ACCELERATORS = ("auto", "cpu", "cuda", "gpu")
STRATEGIES = ("auto", "single_device", "ddp", "ddp_spawn", "ddp_fork", "ddp_notebook", "fsdp")
_START_METHODS = {"ddp_spawn": "spawn", "ddp_fork": "fork", "ddp_notebook": "fork"}


def select_strategy(accelerator: Any, strategy: Any, devices: Any, num_nodes: int) -> Strategy:
    """The Strategy the flags describe; an error naming the flag for values that cannot work here."""
    connect = getattr(strategy, "connect_devices", None)  # sharded strategies take the devices from the flags
    if isinstance(strategy, Strategy) and connect is None:
        if getattr(strategy, "awaits_devices", False):  # DDPStrategy(timeout=...) names no devices
            device_type = _device_type(accelerator)
            strategy.take_devices(device_type, _device_indices(devices, device_type), num_nodes)  # type: ignore[attr-defined]
        return strategy
    if accelerator not in ACCELERATORS:
        raise MisconfigurationError(f"accelerator={accelerator!r}; accepted are {', '.join(map(repr, ACCELERATORS))}")
    if connect is None and strategy not in STRATEGIES:
        raise MisconfigurationError(
            f"strategy={strategy!r}; accepted are {', '.join(map(repr, STRATEGIES))} or a Strategy"
        )
    if not isinstance(num_nodes, int) or num_nodes < 1:
        raise MisconfigurationError(f"num_nodes={num_nodes!r}; accepted is an int >= 1")
    device_type = _device_type(accelerator)
    indices = _device_indices(devices, device_type)
    if connect is not None or strategy == "fsdp":
        from ember.core.strategies.fsdp import FSDPStrategy

        sharded = strategy if connect is not None else FSDPStrategy()
        sharded.connect_devices(device_type, indices, num_nodes)
        return sharded  # type: ignore[no-any-return]
    if strategy == "ddp" or strategy in _START_METHODS or len(indices) > 1 or num_nodes > 1:
        from ember.core.strategies.ddp import DDPStrategy

        return DDPStrategy(device_type, indices, num_nodes, start_method=_START_METHODS.get(strategy, "popen"))
    index = indices[0]
    device = torch.device(device_type, index) if device_type == "cuda" else torch.device("cpu")
    return SingleDeviceStrategy(device)


def _device_type(accelerator: str) -> str:
    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if accelerator in ("cuda", "gpu"):
        if not torch.cuda.is_available():
            raise MisconfigurationError(
                f"accelerator={accelerator!r} but torch finds no CUDA device here; use accelerator='cpu' or 'auto'"
            )
        return "cuda"
    return "cpu"


def _device_indices(devices: Any, device_type: str) -> list[int]:
    available = torch.cuda.device_count() if device_type == "cuda" else None
    if devices == "auto":
        return [0] if device_type == "cpu" else list(range(max(available or 1, 1)))[:1]
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    if isinstance(devices, int) and not isinstance(devices, bool):
        if devices == -1:
            devices = available or 1
        if devices < 1:
            raise MisconfigurationError(
                f"devices={devices!r}; accepted are 'auto', -1, an int >= 1 or a list of indices"
            )
        if available is not None and devices > available:
            raise MisconfigurationError(f"devices={devices} but only {available} CUDA device(s) are visible")
        return list(range(devices))
    if isinstance(devices, (list, tuple)) and devices and all(isinstance(d, int) for d in devices):
        if available is not None and max(devices) >= available:
            raise MisconfigurationError(f"devices={list(devices)} but only {available} CUDA device(s) are visible")
        return list(devices)
    raise MisconfigurationError(f"devices={devices!r}; accepted are 'auto', -1, an int >= 1 or a list of indices")
