"""Lightning's module path ``callbacks.callback``: the Callback base."""

from ember.callback import Callback

__all__ = ["Callback"]
