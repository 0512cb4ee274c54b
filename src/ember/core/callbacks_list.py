"""Lightning's rules for the callback list: model callbacks replace Trainer ones, checkpoints go last."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from ember.callback import Callback, Checkpoint
from ember.errors import MisconfigurationError


def as_callback_list(returned: Any) -> list[Any]:
    """What ``configure_callbacks`` returned, as a list."""
    if returned is None:
        return []
    if isinstance(returned, (list, tuple)):
        return list(returned)
    return [returned]


def lend_logging(callbacks: Sequence[Any], module: Any) -> None:
    """Give each callback the module's ``log`` and ``log_dict`` as ``self.log``/``self.log_dict``, as Lightning does.

    A callback whose class defines its own ``log`` or ``log_dict`` keeps it.
    """
    for callback in callbacks:
        for name in ("log", "log_dict"):
            if not any(name in vars(klass) for klass in type(callback).__mro__ if klass is not object):
                with contextlib.suppress(AttributeError):  # a mock with spec_set, or __slots__
                    setattr(callback, name, getattr(module, name))


def check_callbacks(items: Sequence[Any]) -> None:
    """Raise, naming the item, unless each of ``Trainer(callbacks=...)`` is a Callback or carries ``@ember.hookimpl``s.

    A Callback class instead of an instance, a string, None or an object with
    no hooks would otherwise be accepted and never called.
    """
    from ember.core.pluginmanager import has_hookimpls

    accepted = "accepted are Callback instances and objects or modules with @ember.hookimpl functions"
    for index, item in enumerate(items):
        if isinstance(item, Callback):
            continue
        if isinstance(item, type) and issubclass(item, Callback):
            raise MisconfigurationError(
                f"callbacks[{index}] is the class {item.__qualname__}, not an instance: "
                f"pass {item.__qualname__}(...); {accepted}"
            )
        if item is None or isinstance(item, (str, bytes, int, float, bool)) or not has_hookimpls(item):
            raise MisconfigurationError(
                f"callbacks[{index}] is {item!r} ({type(item).__name__}), which has no hooks; {accepted}"
            )


def merge_model_callbacks(plugins: Sequence[Any], model_callbacks: Sequence[Any]) -> list[Any]:
    """Replace each Trainer callback whose type a model callback is (or subclasses), then append the model's."""
    for callback in model_callbacks:
        if not isinstance(callback, Callback):
            raise MisconfigurationError(
                f"configure_callbacks() returned {callback!r}; accepted are Callback instances or a list of them"
            )
    model_types = {type(c) for c in model_callbacks} - {Callback}
    kept = [
        p
        for p in plugins
        if not (
            isinstance(p, Callback) and any(issubclass(t, type(p)) and type(p) is not Callback for t in model_types)
        )
    ]
    return kept + list(model_callbacks)


def arrange_callbacks(plugins: Sequence[Any]) -> list[Any]:
    """Checkpoint callbacks after all others, so they save what the others changed; order kept otherwise.

    Also where a second progress bar is refused: two would draw over each other.
    """
    check_single_progress_bar(plugins)
    return [p for p in plugins if not isinstance(p, Checkpoint)] + [p for p in plugins if isinstance(p, Checkpoint)]


def check_single_progress_bar(plugins: Sequence[Any]) -> None:
    """Raise if ``plugins`` holds more than one :class:`~ember.plugins.progress_bar.ProgressBar`."""
    from ember.plugins.progress_bar import ProgressBar

    bars = [p for p in plugins if isinstance(p, ProgressBar)]
    if len(bars) > 1:
        raise MisconfigurationError(
            f"the callbacks hold {len(bars)} progress bars ({', '.join(type(b).__name__ for b in bars)}); "
            "only one progress bar can be active: keep one of them"
        )
