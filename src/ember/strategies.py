"""Lightning-shaped import surface for strategies: ``from ember.strategies import DDPStrategy, ...``.

Each strategy lives in its own module under :mod:`ember.core.strategies`;
this module imports them on first use, so ``import ember`` stays free of torch.
"""

from __future__ import annotations

from ember import _lazy

#: Public name -> module that defines it.
STRATEGIES: dict[str, str] = {
    "DDPStrategy": "ember.core.strategies.ddp",
    "FSDPStrategy": "ember.core.strategies.fsdp",
    "ModelParallelStrategy": "ember.core.strategies.model_parallel",
    "SingleDeviceStrategy": "ember.core.strategies.single",
    "Strategy": "ember.core.strategies.single",
}

__all__ = sorted(STRATEGIES)

__getattr__, __dir__ = _lazy.attributes(__name__, STRATEGIES, listed=__all__, hint=f"; it has {', '.join(__all__)}")
