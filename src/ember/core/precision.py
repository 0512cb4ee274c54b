"""The ``precision`` flag: autocast for mixed precision, a gradient scaler for float16, float64 models."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from ember.errors import MisconfigurationError

_ALIASES = {
    "32": "32-true",
    32: "32-true",
    "32-true": "32-true",
    "64": "64-true",
    64: "64-true",
    "64-true": "64-true",
    "16": "16-mixed",
    16: "16-mixed",
    "16-mixed": "16-mixed",
    "bf16": "bf16-mixed",
    "bf16-mixed": "bf16-mixed",
}
ACCEPTED = ("32-true", "bf16-mixed", "16-mixed", "64-true")


def normalize_precision(value: Any) -> str:
    """The canonical name of a ``precision`` flag value; an error for values ember does not support."""
    try:
        return _ALIASES[value]
    except (KeyError, TypeError):
        raise MisconfigurationError(
            f"precision={value!r} is not supported; accepted are {', '.join(map(repr, ACCEPTED))}"
        ) from None


class Precision:
    """How a run computes: the numeric format of forward passes, losses and optimizer steps."""

    def __init__(self, value: Any, device: torch.device) -> None:
        self.value = normalize_precision(value)
        self.device = device
        self.scaler: torch.amp.GradScaler | None = None
        self.autocast_dtype: torch.dtype | None = None
        if self.value == "16-mixed":
            if device.type != "cuda":
                raise MisconfigurationError(
                    f"precision='16-mixed' needs a CUDA device, but this run is on {device.type!r}; "
                    "use precision='bf16-mixed' or '32-true' on CPU"
                )
            self.autocast_dtype = torch.float16
            self.scaler = torch.amp.GradScaler("cuda")
        elif self.value == "bf16-mixed":
            self.autocast_dtype = torch.bfloat16

    def convert_module(self, module: torch.nn.Module) -> None:
        """Cast the model's parameters for ``64-true``; mixed precision keeps them in float32."""
        if self.value == "64-true":
            module.to(torch.float64)

    def convert_input(self, batch: Any) -> Any:
        """Cast floating-point tensors of a batch to float64 for ``64-true``."""
        if self.value != "64-true":
            return batch
        if isinstance(batch, torch.Tensor):
            return batch.double() if batch.is_floating_point() else batch
        if isinstance(batch, dict):
            return type(batch)((k, self.convert_input(v)) for k, v in batch.items())
        if isinstance(batch, (list, tuple)) and not hasattr(batch, "_fields"):
            return type(batch)(self.convert_input(v) for v in batch)
        return batch

    def forward_context(self) -> contextlib.AbstractContextManager[Any]:
        """The context a step's forward pass runs in: autocast for mixed precision."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def backward(self, loss: torch.Tensor, module: Any, *args: Any, **kwargs: Any) -> None:
        """Run the model's ``backward`` on the (scaled, for float16) loss."""
        if self.scaler is not None:
            loss = self.scaler.scale(loss)
        module.backward(loss, *args, **kwargs)

    def optimizer_step(
        self,
        optimizer: torch.optim.Optimizer,
        closure: Callable[[], Any] | None,
        after_closure: Callable[[torch.optim.Optimizer], bool | None],
        skip_if_no_loss: bool,
    ) -> Any:
        """Step ``optimizer``: run the closure, then ``after_closure`` (hooks, clipping), then the step.

        ``after_closure`` returning False skips the step (ember_optimizer_step), where the closure runs once.
        """
        if self.scaler is None:
            if _closure_runs_once(optimizer):  # the same sequence as step(closure), one call layer less
                result = closure() if closure is not None else None
                if after_closure(optimizer) is not False:
                    optimizer.step()
                return result

            def closure_then_hooks() -> Any:
                result = closure() if closure is not None else None
                after_closure(optimizer)
                return result

            return optimizer.step(closure=closure_then_hooks)
        result = closure() if closure is not None else None
        self.unscale_gradients(optimizer)
        skip = after_closure(optimizer) is False
        if skip or (skip_if_no_loss and closure is not None and result is None):
            if skip:
                self.scaler.update()
            return None
        step_output = self.scaler.step(optimizer)
        self.scaler.update()
        return step_output

    def unscale_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients by the loss scale once per step, so clipping sees true values."""
        if self.scaler is None:
            return
        state = self.scaler._per_optimizer_states[id(optimizer)]
        if state["stage"] is torch.amp.grad_scaler.OptState.READY:
            self.scaler.unscale_(optimizer)

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


_ONCE: dict[type, bool] = {}


def _closure_runs_once(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer.step(closure)`` just calls the closure once, then steps: torch's own optimizers but LBFGS.

    For those, running the closure first and then ``step()`` is the same
    computation; any other optimizer (LBFGS, subclasses, third parties) gets
    the closure, as it may call it several times or around its update.
    """
    kind = type(optimizer)
    if kind not in _ONCE:
        _ONCE[kind] = kind.__module__.startswith("torch.optim.") and kind is not torch.optim.LBFGS
    return _ONCE[kind]
