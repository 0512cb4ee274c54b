"""The Callback base class: one no-op method per hook in :mod:`ember.hookspecs`.

A subclass overrides the hooks it needs; registering an instance registers
those and nothing else, so a hook no callback overrides is never called. The
methods are called positionally, as Lightning calls them, so a Lightning
callback ports by changing its imports.

Importing this module does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.module import Module
    from ember.core.trainer import Trainer


class Callback:
    """Base class for callbacks: override the hooks you need.

    To persist state in checkpoints override :meth:`state_dict` and
    :meth:`load_state_dict`; if a Trainer may hold several instances, make
    :attr:`state_key` tell them apart, e.g. with :meth:`_generate_state_key`.
    """

    @property
    def state_key(self) -> str:
        """Identifies this callback's state in a checkpoint; the class's qualified name by default."""
        return type(self).__qualname__

    def _generate_state_key(self, **kwargs: Any) -> str:
        """Build a state key such as ``Counter{'what': 'batches'}`` from identity-defining settings.

        A function among the settings stands as its qualified name, so the key
        is the same in the run that resumes from the checkpoint.
        """
        settings = {key: _stable(value) for key, value in kwargs.items()}
        return f"{type(self).__qualname__}{settings!r}"

    # ------------------------------------------------------------------ stages
    def setup(self, trainer: Trainer, pl_module: Module, stage: str) -> None:
        """See :func:`ember.hookspecs.setup`."""

    def teardown(self, trainer: Trainer, pl_module: Module, stage: str) -> None:
        """See :func:`ember.hookspecs.teardown`."""

    def on_fit_start(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_fit_start`."""

    def on_fit_end(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_fit_end`."""

    def on_sanity_check_start(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_sanity_check_start`."""

    def on_sanity_check_end(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_sanity_check_end`."""

    # ---------------------------------------------------------------- training
    def on_train_start(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_train_start`."""

    def on_train_end(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_train_end`."""

    def on_train_epoch_start(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_train_epoch_start`."""

    def on_train_epoch_end(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_train_epoch_end`."""

    def on_train_batch_start(self, trainer: Trainer, pl_module: Module, batch: Any, batch_idx: int) -> None:
        """See :func:`ember.hookspecs.on_train_batch_start`."""

    def on_train_batch_end(self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int) -> None:
        """See :func:`ember.hookspecs.on_train_batch_end`."""

    # -------------------------------------------------------------- validation
    def on_validation_start(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_validation_start`."""

    def on_validation_end(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_validation_end`."""

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_validation_epoch_start`."""

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_validation_epoch_end`."""

    def on_validation_batch_start(
        self, trainer: Trainer, pl_module: Module, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """See :func:`ember.hookspecs.on_validation_batch_start`."""

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: Module,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """See :func:`ember.hookspecs.on_validation_batch_end`."""

    # -------------------------------------------------------------------- test
    def on_test_start(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_test_start`."""

    def on_test_end(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_test_end`."""

    def on_test_epoch_start(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_test_epoch_start`."""

    def on_test_epoch_end(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_test_epoch_end`."""

    def on_test_batch_start(
        self, trainer: Trainer, pl_module: Module, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """See :func:`ember.hookspecs.on_test_batch_start`."""

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: Module,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """See :func:`ember.hookspecs.on_test_batch_end`."""

    # ----------------------------------------------------------------- predict
    def on_predict_start(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_predict_start`."""

    def on_predict_end(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_predict_end`."""

    def on_predict_epoch_start(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_predict_epoch_start`."""

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_predict_epoch_end`."""

    def on_predict_batch_start(
        self, trainer: Trainer, pl_module: Module, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """See :func:`ember.hookspecs.on_predict_batch_start`."""

    def on_predict_batch_end(
        self,
        trainer: Trainer,
        pl_module: Module,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """See :func:`ember.hookspecs.on_predict_batch_end`."""

    # ------------------------------------------------------------ optimization
    def on_before_backward(self, trainer: Trainer, pl_module: Module, loss: Any) -> None:
        """See :func:`ember.hookspecs.on_before_backward`."""

    def on_after_backward(self, trainer: Trainer, pl_module: Module) -> None:
        """See :func:`ember.hookspecs.on_after_backward`."""

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: Module, optimizer: Any) -> None:
        """See :func:`ember.hookspecs.on_before_optimizer_step`."""

    def on_before_zero_grad(self, trainer: Trainer, pl_module: Module, optimizer: Any) -> None:
        """See :func:`ember.hookspecs.on_before_zero_grad`."""

    # ------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """See :func:`ember.hookspecs.state_dict`; stateless by default."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """See :func:`ember.hookspecs.load_state_dict`."""

    def on_save_checkpoint(self, trainer: Trainer, pl_module: Module, checkpoint: dict[str, Any]) -> None:
        """See :func:`ember.hookspecs.on_save_checkpoint`."""

    def on_load_checkpoint(self, trainer: Trainer, pl_module: Module, checkpoint: dict[str, Any]) -> None:
        """See :func:`ember.hookspecs.on_load_checkpoint`."""

    # ------------------------------------------------------------------ errors
    def on_exception(self, trainer: Trainer, pl_module: Module, exception: BaseException) -> None:
        """See :func:`ember.hookspecs.on_exception`."""


class Checkpoint(Callback):
    """Base class of callbacks that save checkpoints; they run after every other callback."""


def _stable(value: Any) -> Any:
    """``value`` with functions (and other callables) replaced by their qualified names, for state keys."""
    if isinstance(value, (list, tuple)):
        return type(value)(_stable(item) for item in value)
    if callable(value):
        target = getattr(value, "func", value)  # functools.partial
        return getattr(target, "__qualname__", type(target).__qualname__)
    return value
