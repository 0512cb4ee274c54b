"""Hyperparameters: collected from ``__init__`` arguments, stored in checkpoints, shown to loggers."""

from __future__ import annotations

import copy
import inspect
import types
from collections.abc import Mapping, Sequence
from typing import Any


class AttributeDict(dict):  # type: ignore[type-arg]
    """A dict whose keys are also attributes: ``hparams.lr`` and ``hparams["lr"]``."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as error:
            raise AttributeError(f"no hyperparameter {key!r}; known: {sorted(self)}") from error

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value


class HyperparametersMixin:
    """``save_hyperparameters()`` and ``hparams`` for the Module and the DataModule."""

    _hparams: AttributeDict
    _hparams_initial: AttributeDict
    _log_hyperparams: bool

    def save_hyperparameters(
        self,
        *args: Any,
        ignore: Sequence[str] | str | None = None,
        frame: types.FrameType | None = None,
        logger: bool = True,
    ) -> None:
        """Record the ``__init__`` arguments (or the named ones, or a dict) as ``self.hparams``.

        :param args: names of ``__init__`` arguments to keep, or one dict/Namespace to use as is.
        :param ignore: names to leave out (e.g. a backbone module that is saved as weights anyway).
        :param logger: whether loggers receive these hyperparameters when fit starts.
        """
        self._log_hyperparams = logger
        if len(args) == 1 and not isinstance(args[0], str):
            given = args[0]
            values = dict(given) if isinstance(given, Mapping) else dict(vars(given))
        else:
            caller = frame or inspect.currentframe().f_back  # type: ignore[union-attr]
            values = _init_arguments(self, caller)
            if args:
                missing = [name for name in args if name not in values]
                if missing:
                    raise ValueError(
                        f"save_hyperparameters{args!r}: {missing} are not __init__ arguments; known: {sorted(values)}"
                    )
                values = {name: values[name] for name in args}
        ignored = {ignore} if isinstance(ignore, str) else set(ignore or ())
        values = {key: value for key, value in values.items() if key not in ignored}
        self._hparams = AttributeDict(values)
        self._hparams_initial = copy.deepcopy(self._hparams)

    @property
    def hparams(self) -> AttributeDict:
        """The saved hyperparameters (empty until ``save_hyperparameters`` is called)."""
        if not hasattr(self, "_hparams"):
            object.__setattr__(self, "_hparams", AttributeDict())
        return self._hparams

    @property
    def hparams_initial(self) -> AttributeDict:
        """The hyperparameters as saved, unaffected by later changes to ``hparams``."""
        return AttributeDict(copy.deepcopy(getattr(self, "_hparams_initial", {})))


def _init_arguments(owner: object, frame: types.FrameType | None) -> dict[str, Any]:
    """The arguments of every ``__init__`` of ``owner`` on the stack, the outermost subclass winning."""
    collected: dict[str, Any] = {}
    while frame is not None:
        local = frame.f_locals
        if frame.f_code.co_name != "__init__" or local.get("self") is not owner:
            break
        info = inspect.getargvalues(frame)
        found = {name: local[name] for name in info.args if name != "self"}
        if info.keywords:
            found.update(local.get(info.keywords, {}))
        collected = {**found, **collected}
        frame = frame.f_back
    collected.pop("__class__", None)
    return collected
