"""Model helpers ported callbacks import: ``is_overridden`` and ``get_torchvision_model``."""

from __future__ import annotations

from typing import Any

__all__ = ["get_torchvision_model", "is_overridden"]


def is_overridden(method_name: str, instance: object | None = None, parent: type | None = None) -> bool:
    """Whether ``instance``'s class redefines ``method_name`` of ``parent``.

    ``parent`` defaults to ember's Module, DataModule or Callback, whichever ``instance`` is.
    """
    if instance is None:
        return False
    if parent is None:
        from ember.callback import Callback
        from ember.core.datamodule import DataModule
        from ember.core.module import Module

        parent = next((base for base in (Module, DataModule, Callback) if isinstance(instance, base)), None)
        if parent is None:
            raise ValueError(
                f"is_overridden({method_name!r}, {type(instance).__name__}): pass parent=..., the class "
                "whose method may be overridden (it defaults only for a Module, DataModule or Callback)"
            )
    own = getattr(type(instance), method_name, None)
    if own is None:
        return False
    original = getattr(parent, method_name, None)
    if original is None:
        raise ValueError(f"is_overridden({method_name!r}): {parent.__name__} has no method {method_name!r}")
    return getattr(own, "__code__", own) is not getattr(original, "__code__", original)


def get_torchvision_model(model_name: str, **kwargs: Any) -> Any:
    """``torchvision.models.get_model(model_name, **kwargs)``; a clear error when torchvision is missing."""
    try:
        import torchvision
    except ModuleNotFoundError as missing:
        raise ModuleNotFoundError(
            f"get_torchvision_model({model_name!r}) needs torchvision, which is not installed: "
            "run `pip install torchvision` (the build that matches your torch)"
        ) from missing
    return torchvision.models.get_model(model_name, **kwargs)
