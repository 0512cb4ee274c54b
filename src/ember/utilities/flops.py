"""``measure_flops``: the FLOPs of one forward (and optionally backward) pass, counted by torch's FlopCounterMode."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["measure_flops"]


def measure_flops(
    model: torch.nn.Module,
    forward_fn: Callable[[], Any],
    loss_fn: Callable[[Any], torch.Tensor] | None = None,
) -> int:
    """FLOPs of ``forward_fn()`` (no gradients), or of it and ``loss_fn(output).backward()`` when given.

    Build the model on the meta device (``with torch.device("meta"): ...``) to count without memory or time.
    ``model`` is accepted for Lightning's signature; what is counted is what the two functions run.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        if loss_fn is None:
            with torch.no_grad():
                forward_fn()
        else:
            loss_fn(forward_fn()).backward()
    return int(counter.get_total_flops())
