"""The hooks a Module may override, with Lightning's names, arguments and defaults.

The Trainer calls each of them after the callbacks' hook of the same name. A
hook the model does not override and whose default does nothing is skipped,
so it costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.module import Module


class ModuleHooks:
    """Hook catalogue of :class:`ember.Module`; every method here may be overridden."""

    # ------------------------------------------------------------ data and setup
    def prepare_data(self) -> None:
        """Download or write data once per node, before ``setup``; do not set state here."""

    def setup(self, stage: str) -> None:
        """Build what depends on the data or the device; ``stage`` is fit, validate, test or predict."""

    def teardown(self, stage: str) -> None:
        """Release what ``setup`` built; called when a run ends normally."""

    def configure_model(self) -> None:
        """Create layers lazily, after ``setup`` and before ``configure_optimizers``."""

    def configure_callbacks(self) -> Any:
        """Return callbacks this model needs; they replace Trainer callbacks of the same type."""
        return []

    # --------------------------------------------------------------------- fit
    def on_fit_start(self) -> None:
        """Called when fit begins."""

    def on_fit_end(self) -> None:
        """Called when fit ends."""

    def on_train_start(self) -> None:
        """Called when the training loop begins."""

    def on_train_end(self) -> None:
        """Called when the training loop ends."""

    def on_train_epoch_start(self) -> None:
        """Called at the start of each training epoch."""

    def on_train_epoch_end(self) -> None:
        """Called at the end of each training epoch, before checkpointing and early stopping."""

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        """Called before each training batch; return -1 to end the epoch here."""
        return None

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Called after each training batch."""

    # ---------------------------------------------------------------- evaluation
    def on_validation_start(self) -> None:
        """Called when a validation run begins."""

    def on_validation_end(self) -> None:
        """Called when a validation run ends."""

    def on_validation_epoch_start(self) -> None:
        """Called before the first validation batch."""

    def on_validation_epoch_end(self) -> None:
        """Called after the last validation batch."""

    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called before each validation batch."""

    def on_validation_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called after each validation batch."""

    def on_test_start(self) -> None:
        """Called when test begins."""

    def on_test_end(self) -> None:
        """Called when test ends."""

    def on_test_epoch_start(self) -> None:
        """Called before the first test batch."""

    def on_test_epoch_end(self) -> None:
        """Called after the last test batch."""

    def on_test_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called before each test batch."""

    def on_test_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called after each test batch."""

    def on_predict_start(self) -> None:
        """Called when predict begins."""

    def on_predict_end(self) -> None:
        """Called when predict ends."""

    def on_predict_epoch_start(self) -> None:
        """Called before the first predict batch."""

    def on_predict_epoch_end(self) -> None:
        """Called after the last predict batch."""

    def on_predict_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called before each predict batch."""

    def on_predict_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called after each predict batch."""

    def on_validation_model_zero_grad(self: Module) -> None:  # type: ignore[misc]
        """Release the gradients before validation inside fit (not while gradients are being accumulated)."""
        self.zero_grad()

    def on_validation_model_eval(self: Module) -> None:  # type: ignore[misc]
        """Put the model in eval mode for validation."""
        self.trainer._modes.capture_and_eval(self)

    def on_validation_model_train(self: Module) -> None:  # type: ignore[misc]
        """Give every submodule back the train/eval mode it had before validation."""
        self.trainer._modes.restore()

    def on_test_model_eval(self: Module) -> None:  # type: ignore[misc]
        """Put the model in eval mode for test."""
        self.trainer._modes.capture_and_eval(self)

    def on_test_model_train(self: Module) -> None:  # type: ignore[misc]
        """Give every submodule back the mode it had before test."""
        self.trainer._modes.restore()

    def on_predict_model_eval(self: Module) -> None:  # type: ignore[misc]
        """Put the model in eval mode for predict."""
        self.trainer._modes.capture_and_eval(self)

    def on_predict_model_train(self: Module) -> None:  # type: ignore[misc]
        """Give every submodule back the mode it had before predict."""
        self.trainer._modes.restore()

    # ------------------------------------------------------------ batch transfer
    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Change a batch before it moves to the device; return it."""
        return batch

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Move every tensor in ``batch`` (nested lists, tuples and dicts) to ``device``."""
        return move_to_device(batch, device)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Change a batch after it moved to the device (e.g. GPU augmentation); return it."""
        return batch

    # -------------------------------------------------------------- optimization
    def on_before_zero_grad(self, optimizer: torch.optim.Optimizer) -> None:
        """Called before the gradients are zeroed."""

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: torch.optim.Optimizer) -> None:
        """Zero the gradients of ``optimizer``."""
        optimizer.zero_grad()

    def on_before_backward(self, loss: torch.Tensor) -> None:
        """Called before the backward pass."""

    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        """Run the backward pass of ``loss``."""
        loss.backward(*args, **kwargs)

    def on_after_backward(self) -> None:
        """Called after the backward pass; gradients are in ``.grad``."""

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Called before each optimizer step, before gradient clipping."""

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip gradients before the step; by default as the Trainer's clipping flags say."""
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)  # type: ignore[attr-defined]

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
        """Step ``optimizer``; ``optimizer_closure`` runs training_step and backward and must be passed on."""
        optimizer.step(closure=optimizer_closure)

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        """Step a scheduler; ``metric`` is the monitored value for ReduceLROnPlateau, else None."""
        if metric is None:
            scheduler.step()
        else:
            scheduler.step(metric)

    # ------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add entries to a checkpoint before it is written."""

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Read entries from a checkpoint before the states are restored."""


def move_to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor in it moved to ``device``; other values are left as they are."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, dict):
        return type(batch)((key, move_to_device(value, device)) for key, value in batch.items())
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(move_to_device(value, device) for value in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(value, device) for value in batch)
    if hasattr(batch, "to") and callable(batch.to):
        return batch.to(device)
    return batch
