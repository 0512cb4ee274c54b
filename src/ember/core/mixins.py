"""Lightning's path ``core.mixins``: ``HyperparametersMixin`` (``save_hyperparameters`` for any class)."""

from __future__ import annotations

from ember.core.hparams import HyperparametersMixin

__all__ = ["HyperparametersMixin"]
