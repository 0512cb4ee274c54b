"""Which of the model's hooks to call, and the batch-transfer sequence every loop runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ember.core.module_hooks import ModuleHooks
from ember.core.signatures import with_indices

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.module import Module
    from ember.core.trainer import Trainer

_BASES = frozenset(("ModuleHooks", "Module", "HyperparametersMixin"))
_HOOK_NAMES = frozenset(name for name in vars(ModuleHooks) if not name.startswith("_"))


def module_overrides(module: Module | None) -> frozenset[str]:
    """The hooks of :class:`~ember.core.module_hooks.ModuleHooks` that ``module``'s class redefines or its instance sets.

    A callable assigned on the instance (``model.on_train_epoch_end = fn``)
    counts, as Lightning calls whatever ``getattr`` finds.
    """
    if module is None:
        return frozenset()
    own = vars(module)
    found = {name for name in _HOOK_NAMES if callable(own.get(name))}
    for name in _HOOK_NAMES:
        for klass in type(module).__mro__:
            if name in vars(klass):
                if klass.__name__ not in _BASES or klass.__module__.split(".")[0] != "ember":
                    found.add(name)
                break
    return frozenset(found)


_TRANSFER_HOOKS = frozenset(("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer"))


def needs_transfer(trainer: Trainer) -> bool:
    """Whether batches need :func:`transfer_batch`: a device other than the CPU, a transfer hook, or float64."""
    return (
        trainer.strategy.root_device.type != "cpu"
        or bool(_TRANSFER_HOOKS & trainer._module_hooks)
        or trainer._precision.value == "64-true"
    )


def transfer_batch(trainer: Trainer, batch: Any, dataloader_idx: int) -> Any:
    """on_before_batch_transfer, transfer_batch_to_device, on_after_batch_transfer, then the precision cast.

    The model's hooks run only when it overrides them or the batch must move
    off the CPU, so a CPU run with default hooks does no work here.
    """
    module = trainer.lightning_module
    overrides = trainer._module_hooks
    if "on_before_batch_transfer" in overrides:
        trainer._fx = "on_before_batch_transfer"
        batch = module.on_before_batch_transfer(batch, dataloader_idx)  # type: ignore[union-attr]
    device = trainer.strategy.root_device
    if device.type != "cpu" or "transfer_batch_to_device" in overrides:
        trainer._fx = "transfer_batch_to_device"
        batch = module.transfer_batch_to_device(batch, device, dataloader_idx)  # type: ignore[union-attr]
    if "on_after_batch_transfer" in overrides:
        trainer._fx = "on_after_batch_transfer"
        batch = module.on_after_batch_transfer(batch, dataloader_idx)  # type: ignore[union-attr]
    return trainer._precision.convert_input(batch)


_NO_OUTPUTS = object()


def module_batch_hook(trainer: Trainer, name: str, several: bool) -> Callable[..., Any] | None:
    """The model's evaluation or predict batch hook ``name`` (None if not overridden), taking every index.

    It passes on ``batch_idx`` and ``dataloader_idx`` as the model's signature takes them (see :mod:`ember.core.signatures`).
    """
    if name not in trainer._module_hooks:
        return None
    return with_indices(getattr(trainer.lightning_module, name), several, leading=2 if name.endswith("_end") else 1)


def call_batch_hook(
    trainer: Trainer,
    name: str,
    batch: Any,
    batch_idx: int,
    dataloader_idx: int,
    module_hook: Callable[..., Any] | None,
    outputs: Any = _NO_OUTPUTS,
) -> None:
    """An evaluation or predict batch hook: plugins get every argument, the model what :func:`module_batch_hook` passes."""
    trainer._fx = name
    module = trainer.lightning_module
    caller = trainer._callers.get(name)
    if caller is not None:
        if outputs is _NO_OUTPUTS:
            caller(trainer=trainer, pl_module=module, batch=batch, batch_idx=batch_idx, dataloader_idx=dataloader_idx)
        else:
            caller(
                trainer=trainer,
                pl_module=module,
                outputs=outputs,
                batch=batch,
                batch_idx=batch_idx,
                dataloader_idx=dataloader_idx,
            )
    if module_hook is not None:
        if outputs is _NO_OUTPUTS:
            module_hook(batch, batch_idx, dataloader_idx)
        else:
            module_hook(outputs, batch, batch_idx, dataloader_idx)


def replaced(caller: Any, trainer: Trainer, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int) -> Any:
    """What a two-way outputs hook (``ember_validation_outputs``, ...) returns, or ``outputs`` when it returns None."""
    trainer._fx = caller.__name__
    result = caller(
        trainer=trainer,
        pl_module=trainer.lightning_module,
        outputs=outputs,
        batch=batch,
        batch_idx=batch_idx,
        dataloader_idx=dataloader_idx,
    )
    return outputs if result is None else result
