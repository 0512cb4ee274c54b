"""A hook's caller written out as straight-line calls, one per implementation, when it is built.

pluggy calls a hook by looping over its implementations and building each
one's argument list from a dict of keywords. Per call that is a few hundred
nanoseconds of Python an implementation, and on a small model the training
loop calls six hooks a step. When every implementation of a hook is plain
(no wrappers, no defaulted arguments), ember instead writes the loop out once,
as the source of one function that takes the hook's arguments and calls each
implementation with its own subset, in call order::

    def on_before_backward(trainer, pl_module, loss):
        if manager._generation != 3:
            return general(trainer=trainer, pl_module=pl_module, loss=loss)
        results = []
        result = f0(trainer, pl_module, loss)
        if result is not None:
            results.append(result)
        result = f1(trainer)
        ...

Results combine as pluggy's do (a list of the non-None ones, or the first
non-None one for a ``firstresult`` hook). The manager counts every change
to what a call would do (a plugin registered or unregistered, an order
declared, hook-call monitoring added or removed); a caller written before a
change hands each call to ``general``, pluggy's loop, so it stays correct.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol


class _Implementation(Protocol):
    @property
    def function(self) -> Callable[..., Any]: ...

    @property
    def argnames(self) -> tuple[str, ...]: ...


def written_caller(
    name: str,
    argnames: Sequence[str],
    implementations: Sequence[_Implementation],
    firstresult: bool,
    manager: Any,
    general: Callable[..., Any],
) -> Callable[..., Any] | None:
    """The caller of hook ``name`` as one function, or None when an implementation wants an argument the spec lacks.

    :param implementations: in call order.
    :param manager: has ``_generation``, the count of changes at the time of writing.
    :param general: the caller to use once the manager has changed; takes the arguments as keywords.
    """
    known = set(argnames)
    if not all(argument.isidentifier() for argument in argnames) or any(
        not set(impl.argnames) <= known for impl in implementations
    ):
        return None
    parameters = ", ".join(argnames)
    keywords = ", ".join(f"{argument}={argument}" for argument in argnames)
    lines = [
        f"def {name}({parameters}):",
        f"    if manager._generation != {manager._generation}:",
        f"        return general({keywords})",
    ]
    if not firstresult:
        lines.append("    results = []")
    namespace: dict[str, Any] = {"manager": manager, "general": general}
    for index, impl in enumerate(implementations):
        namespace[f"f{index}"] = impl.function
        lines += [
            f"    result = f{index}({', '.join(impl.argnames)})",
            "    if result is not None:",
            "        return result" if firstresult else "        results.append(result)",
        ]
    lines.append("    return None" if firstresult else "    return results")
    exec(compile("\n".join(lines), f"<ember hook {name}>", "exec"), namespace)  # noqa: S102 - our own source
    caller: Callable[..., Any] = namespace[name]
    return caller
