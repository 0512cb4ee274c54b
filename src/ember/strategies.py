"""Lightning-shaped import surface for strategies: ``from ember.strategies import DDPStrategy, ...``.

Each strategy lives in its own module under :mod:`ember.core.strategies`;
this module imports them on first use, so ``import ember`` stays free of torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: Public name -> module that defines it.
STRATEGIES: dict[str, str] = {
    "DDPStrategy": "ember.core.strategies.ddp",
    "FSDPStrategy": "ember.core.strategies.fsdp",
    "ModelParallelStrategy": "ember.core.strategies.model_parallel",
    "SingleDeviceStrategy": "ember.core.strategies.single",
    "Strategy": "ember.core.strategies.single",
}

__all__ = sorted(STRATEGIES)


def __getattr__(name: str) -> Any:
    module = STRATEGIES.get(name)
    if module is None:
        raise AttributeError(f"module 'ember.strategies' has no attribute {name!r}; it has {', '.join(__all__)}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
