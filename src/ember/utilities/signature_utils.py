"""``is_param_in_hook_signature``: whether a hook takes an argument, which decides what the loops pass it."""

from __future__ import annotations

from ember.core.signatures import is_param_in_hook_signature

__all__ = ["is_param_in_hook_signature"]
