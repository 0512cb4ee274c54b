"""Call a step or batch hook with the arguments its signature takes, as Lightning does.

Lightning's GAN example defines ``training_step(self, batch)``; a validation
step may leave out ``dataloader_idx``. The signature is read once per run
(when the loop starts), and the loops call the returned function with every
argument on each batch: a direct call when the hook takes them all.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def is_param_in_hook_signature(
    hook_fx: Callable[..., Any], param: str, explicit: bool = False, min_args: int | None = None
) -> bool:
    """True when ``hook_fx`` takes ``param``: by name, through ``*args`` (unless ``explicit``), or by position.

    :param min_args: also true when the hook takes at least this many positional arguments
        (``self`` not counted), so ``training_step(self, batch, idx)`` takes ``batch_idx``.
    """
    parameters = list(inspect.signature(hook_fx).parameters.values())
    if not inspect.ismethod(hook_fx) and parameters and parameters[0].name == "self":
        parameters = parameters[1:]  # a function taken from the class: self is not an argument the loops pass
    if any(p.name == param and p.kind != inspect.Parameter.VAR_KEYWORD for p in parameters):
        return True
    if not explicit and any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return True
    return min_args is not None and sum(p.kind in _POSITIONAL for p in parameters) >= min_args


def with_batch_idx(
    function: Callable[..., Any], leading: int = 1, signature_of: Callable[..., Any] | None = None
) -> Callable[..., Any]:
    """``function`` as a callable of ``(*leading arguments, batch_idx)``; batch_idx dropped if not taken.

    :param signature_of: the hook whose signature decides, when ``function`` calls it through a wrapper (DDP).
    """
    if is_param_in_hook_signature(signature_of or function, "batch_idx", min_args=leading + 1):
        return function

    def without_batch_idx(*arguments: Any) -> Any:
        return function(*arguments[:-1])

    return without_batch_idx


def with_indices(function: Callable[..., Any], several: bool, leading: int = 1) -> Callable[..., Any]:
    """``function`` as a callable of ``(*leading arguments, batch_idx, dataloader_idx)``.

    ``batch_idx`` goes in when the signature takes it; ``dataloader_idx``
    with several dataloaders when it takes it, with one only when it names it.
    """
    takes_batch_idx = is_param_in_hook_signature(function, "batch_idx", min_args=leading + 1)
    if several:
        takes_dataloader_idx = is_param_in_hook_signature(function, "dataloader_idx", min_args=leading + 2)
    else:
        takes_dataloader_idx = is_param_in_hook_signature(function, "dataloader_idx", explicit=True)
    if takes_batch_idx and takes_dataloader_idx:
        return function
    if takes_batch_idx:

        def without_dataloader_idx(*arguments: Any) -> Any:
            return function(*arguments[:-1])

        return without_dataloader_idx
    if takes_dataloader_idx:

        def without_batch_idx(*arguments: Any) -> Any:
            return function(*arguments[:-2], dataloader_idx=arguments[-1])

        return without_batch_idx

    def batch_only(*arguments: Any) -> Any:
        return function(*arguments[:-2])

    return batch_only
