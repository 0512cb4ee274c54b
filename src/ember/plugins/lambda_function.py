"""LambdaCallback: a callback made on the spot from functions, for one-off behaviour not worth a class.

Each function given becomes an instance attribute named after its hook; the
plugin manager counts a callable instance attribute named like a hook as an
overridden hook, so only the hooks given are registered and called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ember.callback import Callback
from ember.errors import MisconfigurationError


class LambdaCallback(Callback):
    """A callback whose hooks are the functions passed by keyword.

    Each function is called positionally with the hook's arguments, as a
    Callback method would be without ``self``: ``(trainer, pl_module, ...)``.
    ``LambdaCallback(on_train_epoch_end=lambda trainer, pl_module: ...)``.
    """

    def __init__(
        self,
        setup: Callable[..., Any] | None = None,
        teardown: Callable[..., Any] | None = None,
        on_fit_start: Callable[..., Any] | None = None,
        on_fit_end: Callable[..., Any] | None = None,
        on_sanity_check_start: Callable[..., Any] | None = None,
        on_sanity_check_end: Callable[..., Any] | None = None,
        on_train_batch_start: Callable[..., Any] | None = None,
        on_train_batch_end: Callable[..., Any] | None = None,
        on_train_epoch_start: Callable[..., Any] | None = None,
        on_train_epoch_end: Callable[..., Any] | None = None,
        on_validation_epoch_start: Callable[..., Any] | None = None,
        on_validation_epoch_end: Callable[..., Any] | None = None,
        on_test_epoch_start: Callable[..., Any] | None = None,
        on_test_epoch_end: Callable[..., Any] | None = None,
        on_validation_batch_start: Callable[..., Any] | None = None,
        on_validation_batch_end: Callable[..., Any] | None = None,
        on_test_batch_start: Callable[..., Any] | None = None,
        on_test_batch_end: Callable[..., Any] | None = None,
        on_train_start: Callable[..., Any] | None = None,
        on_train_end: Callable[..., Any] | None = None,
        on_validation_start: Callable[..., Any] | None = None,
        on_validation_end: Callable[..., Any] | None = None,
        on_test_start: Callable[..., Any] | None = None,
        on_test_end: Callable[..., Any] | None = None,
        on_exception: Callable[..., Any] | None = None,
        on_save_checkpoint: Callable[..., Any] | None = None,
        on_load_checkpoint: Callable[..., Any] | None = None,
        on_before_backward: Callable[..., Any] | None = None,
        on_after_backward: Callable[..., Any] | None = None,
        on_before_optimizer_step: Callable[..., Any] | None = None,
        on_before_zero_grad: Callable[..., Any] | None = None,
        on_predict_start: Callable[..., Any] | None = None,
        on_predict_end: Callable[..., Any] | None = None,
        on_predict_batch_start: Callable[..., Any] | None = None,
        on_predict_batch_end: Callable[..., Any] | None = None,
        on_predict_epoch_start: Callable[..., Any] | None = None,
        on_predict_epoch_end: Callable[..., Any] | None = None,
    ) -> None:
        for hook_name, function in list(locals().items()):
            if hook_name == "self" or function is None:
                continue
            if not callable(function):
                raise MisconfigurationError(
                    f"LambdaCallback({hook_name}={function!r}): accepted is a callable taking the hook's arguments"
                )
            setattr(self, hook_name, function)
