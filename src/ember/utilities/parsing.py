"""``AttributeDict``: the dict behind ``self.hparams``, whose keys are also attributes."""

from __future__ import annotations

from ember.core.hparams import AttributeDict

__all__ = ["AttributeDict", "is_picklable"]


def is_picklable(obj: object) -> bool:
    """Whether ``obj`` survives ``pickle.dumps`` (what hyperparameters and spawned processes need)."""
    import pickle

    try:
        pickle.dumps(obj)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True
