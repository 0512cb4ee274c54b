"""Record hook calls: a callback that implements every hook, and model subclasses that record theirs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ember.callback import Callback
from ember.core.module_hooks import ModuleHooks
from ember.core.pluginmanager import HOOK_NAMES

#: The model methods a recording model records, besides the hooks of ModuleHooks.
MODULE_METHODS = (
    "training_step",
    "validation_step",
    "test_step",
    "predict_step",
    "configure_optimizers",
    "train_dataloader",
    "val_dataloader",
    "test_dataloader",
    "predict_dataloader",
)


class HookRecorder(Callback):
    """A callback implementing every hook; ``calls`` lists their names in call order.

    :param prefix: prepended to each recorded name (e.g. ``"cb."`` to interleave with a model's calls).
    :param calls: a list to append to, shared with a recording model to see the interleaving.
    :param record_args: also keep each call's arguments in ``call_args``.
    :param name: tells recorders apart in checkpoints (their ``state_key``) when a Trainer has several.
    """

    def __init__(
        self, prefix: str = "", calls: list[str] | None = None, record_args: bool = False, name: str = ""
    ) -> None:
        self.prefix, self.name = prefix, name
        self.calls: list[str] = calls if calls is not None else []
        self.call_args: list[tuple[str, tuple[Any, ...]]] = []
        self._record_args = record_args

    @property
    def state_key(self) -> str:
        return self._generate_state_key(name=self.name) if self.name else "HookRecorder"

    def names(self, *hooks: str) -> list[str]:
        """The recorded calls of just these hooks (all when none are given), in order."""
        wanted = {self.prefix + hook for hook in hooks}
        return [call for call in self.calls if not hooks or call in wanted]

    def assert_sequence(self, expected: Sequence[str], hooks: Sequence[str] = ()) -> None:
        """Assert the recorded calls (of ``hooks`` only, if given) equal ``expected``, showing the first difference."""
        actual = self.names(*hooks)
        expected = [self.prefix + name if not name.startswith(self.prefix) else name for name in expected]
        if actual != expected:
            for index, (got, want) in enumerate(zip(actual, expected)):
                if got != want:
                    raise AssertionError(f"call {index}: got {got!r}, expected {want!r}\nactual: {actual}")
            raise AssertionError(f"got {len(actual)} calls, expected {len(expected)}\nactual: {actual}")


def _recording_hook(name: str) -> Any:
    def hook(self: HookRecorder, *args: Any) -> Any:
        self.calls.append(self.prefix + name)
        if self._record_args:
            self.call_args.append((name, args))
        return {} if name == "state_dict" else None

    hook.__name__ = hook.__qualname__ = name
    return hook


for _name in HOOK_NAMES:
    setattr(HookRecorder, _name, _recording_hook(_name))


def recording_module(base: type, calls: list[str], prefix: str = "m.") -> type:
    """A subclass of model class ``base`` whose hooks and steps append ``prefix + name`` to ``calls``."""
    names = [name for name in vars(ModuleHooks) if not name.startswith("_")]
    names += [name for name in MODULE_METHODS if callable(getattr(base, name, None))]

    def wrap(name: str) -> Any:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(prefix + name)
            return getattr(super(subclass, self), name)(*args, **kwargs)

        method.__name__ = method.__qualname__ = name
        return method

    subclass = type(f"Recording{base.__name__}", (base,), {name: wrap(name) for name in names})
    return subclass
