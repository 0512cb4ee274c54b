"""Lightning's package ``callbacks.progress``: the progress bars, loaded on first use."""

from __future__ import annotations

from typing import Any

__all__ = ["ProgressBar", "RichProgressBar", "TQDMProgressBar"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        import ember.callbacks

        return getattr(ember.callbacks, name)
    raise AttributeError(f"module 'ember.callbacks.progress' has no attribute {name!r}; it has {', '.join(__all__)}")
