"""One training step: training_step, zero_grad, backward and the optimizer step, each with its hooks.

Automatic optimization follows Lightning's closure order: training_step, then
(on the first batch of an accumulation window) on_before_zero_grad and
optimizer_zero_grad, then on_before_backward, backward, on_after_backward;
the optimizer then runs on_before_optimizer_step and gradient clipping before
it steps. Manual optimization leaves all of that to ``training_step``; the
backward and optimizer-step hooks still fire through ``manual_backward`` and
``optimizer.step()``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from ember.core.optimizers import SteppingOptimizer, clear_gradients
from ember.core.signatures import with_batch_idx
from ember.errors import MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer


class Optimization:
    """Runs training steps for one fit; built when fit starts, after the plugins are registered."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.module = trainer.lightning_module
        callers, overrides = trainer._callers, trainer._module_hooks
        self.automatic = self.module.automatic_optimization  # type: ignore[union-attr]
        names = ("on_before_zero_grad", "on_before_backward", "on_after_backward", "on_before_optimizer_step")
        hooked = {name for name in names if name in callers or name in overrides}
        self._zero_grad_hooked = "on_before_zero_grad" in hooked
        self._backward_hooked = bool(hooked & {"on_before_backward", "on_after_backward"})
        self._step_hooked = "on_before_optimizer_step" in hooked
        self._own_optimizer_step = "optimizer_step" in overrides
        self._replace_loss, self._gate_step = callers.get("ember_loss"), callers.get("ember_optimizer_step")
        # a plugin gating optimizer steps (ember_optimizer_step) decides what a non-finite loss means: no warning
        self._warned_non_finite = self._gate_step is not None
        #: CPU losses not yet checked for NaN/inf, with their global_step and epoch: read together, every 64.
        self._unchecked: list[tuple[torch.Tensor, int, int]] = []
        #: The loss last backpropagated, kept for ember_optimizer_step only.
        self._loss: torch.Tensor | None = None
        from ember.core.precision import Precision, _closure_runs_once

        precision = trainer._precision
        self._autocast = precision.autocast_dtype is not None
        #: Neither the model nor the precision changes these calls: make them on the optimizer and loss directly.
        self._plain_zero_grad = "optimizer_zero_grad" not in overrides
        self._plain_backward = (
            "backward" not in overrides and type(precision).backward is Precision.backward and precision.scaler is None
        )
        #: Whether anyone reads a training step's outputs (on_train_batch_end); set by the epoch loop.
        self.outputs_wanted = True
        self._clip = trainer.gradient_clip_val is not None or "configure_gradient_clipping" in overrides
        if not self.automatic and trainer.gradient_clip_val is not None:
            raise MisconfigurationError(
                f"Trainer(gradient_clip_val={trainer.gradient_clip_val}) does not apply to manual optimization; "
                "call self.clip_gradients(optimizer, gradient_clip_val=...) in training_step instead"
            )
        trainer._stepping_optimizers = [SteppingOptimizer(o, self.optimizer_step) for o in trainer.optimizers]
        self.training_step = with_batch_idx(
            trainer.strategy.training_step_function(self.module),
            signature_of=self.module.training_step,  # type: ignore[union-attr,arg-type]
        )
        #: Whether the last training step ended an accumulation window.
        self.stepped = False
        plain = (
            self.automatic
            and not (self._own_optimizer_step or self._clip or self._autocast)
            and self._replace_loss is None
            and self._gate_step is None
            and precision.scaler is None
            and len(trainer.optimizers) == 1
            and _closure_runs_once(trainer.optimizers[0])
        )
        #: The step without the closure's layers, for the common case (no clipping, accumulation or scaler).
        self._plain_step = self._step_plainly if plain else None

    # ------------------------------------------------------------ one batch
    def run(self, batch: Any, batch_idx: int, is_last: bool) -> Any:
        """Run the training step of one batch; return its outputs for on_train_batch_end."""
        if self._plain_step is not None and self.trainer.accumulate_grad_batches == 1:  # a scheduler may change it
            self.stepped = True
            return self._plain_step(batch, batch_idx)
        trainer = self.trainer
        if not self.automatic:
            trainer._fx = "training_step"
            with trainer._precision.forward_context():
                output = self.training_step(batch, batch_idx)
            self.stepped = True
            return output
        accumulate = trainer.accumulate_grad_batches
        in_epoch = trainer.fit_progress.batches_in_epoch
        self.stepped = accumulate == 1 or (in_epoch + 1) % accumulate == 0 or is_last
        if accumulate > 1:
            trainer.strategy.prepare_micro_batch(self.stepped)
        closure = _Closure(self, batch, batch_idx, zero_grad=accumulate == 1 or in_epoch % accumulate == 0)
        if not self.stepped:
            closure()
        elif self._own_optimizer_step:
            trainer._fx = "optimizer_step"
            self.module.optimizer_step(  # type: ignore[union-attr]
                trainer.fit_progress.epoch, batch_idx, trainer._stepping_optimizers[0], closure
            )
        else:  # what the default optimizer_step does, without its two extra calls
            self.optimizer_step(trainer.optimizers[0], closure)
        return closure.outputs

    def _step_plainly(self, batch: Any, batch_idx: int) -> Any:
        """What ``run`` does when the step needs no closure: the same calls and hooks, in the same order, without it.

        training_step, on_before_zero_grad, the model's optimizer_zero_grad,
        the loss check, backward between its hooks, on_before_optimizer_step,
        ``optimizer.step()``: the closure's layers this skips were a third of
        ember's own cost per step on a small model.
        """
        trainer = self.trainer
        optimizer = trainer.strategy.optimizers[0]
        trainer._fx = "training_step"
        output = self.training_step(batch, batch_idx)
        loss = output if type(output) is torch.Tensor else _loss_of(output)
        # nobody reading the outputs, the loss is not detached: a detach costs more than the rest of this line
        outputs = _outputs_of(output, loss.detach() if loss is not None else None) if self.outputs_wanted else None
        self._zero_grad(optimizer, batch_idx)
        if loss is not None:
            if not self._warned_non_finite and loss.is_cpu:
                self.note_loss(loss)  # its graph is freed by backward (no retain_graph here): keeping it is cheap
            self._backward_between_hooks(loss)
        if self._step_hooked:
            trainer._hook("on_before_optimizer_step", optimizer=optimizer)
        optimizer.step()
        trainer.fit_progress.global_step += 1
        return outputs

    # ------------------------------------------------- shared with manual mode
    def note_loss(self, loss: torch.Tensor) -> None:
        """Keep a CPU loss for :meth:`check_finite`; reading 64 losses at once costs less than one read a step.

        Only losses already on the CPU are noted: on an accelerator the read
        would wait for the device, which the hot path must not do. A loss whose
        graph may still hold tensors (``retain_graph``) is noted detached.
        """
        progress = self.trainer.fit_progress
        self._unchecked.append((loss, progress.global_step, progress.epoch))
        if len(self._unchecked) >= 64:
            self.check_finite()

    def check_finite(self) -> None:
        """Warn once per fit when a noted loss is NaN or infinite, naming its step; called at every 64th and epoch end."""
        noted, self._unchecked = self._unchecked, []
        if not noted or self._warned_non_finite:
            return
        losses = [loss for loss, _, _ in noted]
        with torch.no_grad():
            try:  # NaN and inf carry into the sum: one read for all, and only a non-finite sum is looked into
                if math.isfinite(torch.stack(losses).sum().item()):
                    return
            except RuntimeError:  # losses of different shapes or dtypes
                pass
            finite = [bool(torch.isfinite(loss).all()) for loss in losses]
        if all(finite):  # finite values whose sum overflowed
            return
        first = finite.index(False)
        loss, step, epoch = noted[first]
        import warnings

        from ember.errors import EmberWarning

        self._warned_non_finite = True
        warnings.warn(
            f"the training loss is {loss.float().mean().item()} at global_step={step} (epoch {epoch}); "
            "training goes on, but the weights may no longer be finite (warned once per fit)",
            EmberWarning,
            stacklevel=2,
        )

    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        """on_before_backward, the model's backward (through precision), on_after_backward."""
        trainer = self.trainer
        if not self._warned_non_finite and loss.is_cpu:
            self.note_loss(loss.detach())
        if self._replace_loss is not None:
            replaced = self._replace_loss(trainer=trainer, pl_module=self.module, loss=loss)
            loss = loss if replaced is None else replaced
        if self._gate_step is not None:
            self._loss = loss
        self._backward_between_hooks(loss, *args, **kwargs)

    def _backward_between_hooks(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        """on_before_backward, the model's backward through precision, on_after_backward; the plain step's too."""
        trainer = self.trainer
        hooked = self._backward_hooked
        if hooked:
            trainer._hook("on_before_backward", loss=loss)
        trainer._fx = "backward"
        try:
            if self._plain_backward:
                loss.backward(*args, **kwargs)
            else:
                trainer._precision.backward(loss, self.module, *args, **kwargs)
        except RuntimeError as error:  # another rank not answering in the gradient all-reduce: say which
            trainer.strategy.collective_failed(trainer.strategy.backward_collective, error)
            raise
        if hooked:
            trainer._hook("on_after_backward")

    def optimizer_step(self, optimizer: torch.optim.Optimizer, closure: Any = None) -> Any:
        """What ``SteppingOptimizer.step`` does: precision-aware step, hooks, clipping; counts the step."""
        result = self.trainer._precision.optimizer_step(
            optimizer, closure, self._after_closure, skip_if_no_loss=self.automatic
        )
        self.trainer.fit_progress.global_step += 1
        return result

    def _after_closure(self, optimizer: torch.optim.Optimizer) -> bool | None:
        """on_before_optimizer_step and clipping; False when ember_optimizer_step says to skip the step."""
        if self._step_hooked:
            self.trainer._hook("on_before_optimizer_step", optimizer=optimizer)
        if self.automatic and self._clip:
            trainer = self.trainer
            trainer._fx = "configure_gradient_clipping"
            self.module.configure_gradient_clipping(  # type: ignore[union-attr]
                optimizer, trainer.gradient_clip_val, trainer.gradient_clip_algorithm
            )
        if self._gate_step is not None:
            loss, self._loss = self._loss, None
            decision = self._gate_step(trainer=self.trainer, pl_module=self.module, optimizer=optimizer, loss=loss)
            return False if decision is False else None
        return None

    def _zero_grad(self, optimizer: torch.optim.Optimizer, batch_idx: int) -> None:
        """on_before_zero_grad, then the model's optimizer_zero_grad (``optimizer.zero_grad()`` unless overridden)."""
        trainer = self.trainer
        if self._zero_grad_hooked:
            trainer._hook("on_before_zero_grad", optimizer=optimizer)
        trainer._fx = "optimizer_zero_grad"
        if self._plain_zero_grad:
            clear_gradients(optimizer)
        else:
            self.module.optimizer_zero_grad(trainer.fit_progress.epoch, batch_idx, optimizer)  # type: ignore[union-attr]


class _Closure:
    """training_step, zero_grad and backward for one batch; what optimizer.step(closure) calls.

    Returns the loss (None when training_step returned None, which skips
    backward), keeping the step's outputs for on_train_batch_end.
    """

    __slots__ = ("batch", "batch_idx", "optimization", "outputs", "zero_grad")

    def __init__(self, optimization: Optimization, batch: Any, batch_idx: int, zero_grad: bool) -> None:
        self.optimization, self.batch, self.batch_idx, self.zero_grad = optimization, batch, batch_idx, zero_grad
        self.outputs: Any = None

    def __call__(self) -> torch.Tensor | None:
        optimization = self.optimization
        trainer = optimization.trainer
        trainer._fx = "training_step"
        if optimization._autocast:
            with trainer._precision.forward_context():
                output = optimization.training_step(self.batch, self.batch_idx)
        else:
            output = optimization.training_step(self.batch, self.batch_idx)
        loss = output if type(output) is torch.Tensor else _loss_of(output)
        detached = loss.detach() if loss is not None else None
        self.outputs = _outputs_of(output, detached)
        if self.zero_grad:
            optimization._zero_grad(trainer.optimizers[0], self.batch_idx)
        if loss is None:
            return None
        accumulate = trainer.accumulate_grad_batches
        optimization.backward(loss / accumulate if accumulate > 1 else loss)
        return detached


def _loss_of(output: Any) -> torch.Tensor | None:
    if output is None or isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        if "loss" not in output:
            raise MisconfigurationError(
                f"training_step returned a dict with keys {sorted(output)}; with automatic optimization "
                'it needs a "loss" key (or return the loss tensor, or None to skip the batch)'
            )
        return output["loss"]  # type: ignore[no-any-return]
    raise MisconfigurationError(
        f"training_step returned {type(output).__name__}; accepted are a loss tensor, a dict with a "
        '"loss" key, or None to skip the batch'
    )


def _outputs_of(output: Any, detached_loss: torch.Tensor | None) -> Any:
    """What on_train_batch_end receives: a dict with the detached loss, as Lightning passes it."""
    if detached_loss is None:
        return output
    if type(output) is not torch.Tensor and isinstance(output, Mapping):  # a tensor skips the slower ABC check
        return {**output, "loss": detached_loss}
    return {"loss": detached_loss}
