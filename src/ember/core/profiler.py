"""Per-plugin profiling: how long each plugin spends in each hook, and its share of the training time.

``Trainer(profiler="plugins")`` times every hook implementation on its own,
something pluggy makes possible because each plugin's function is a separate
entry in the hook's call list; Lightning's profiler only times whole hook
calls. Wrappers (``wrapper=True``) are timed until their ``yield``. When the
profiler is off nothing is wrapped, so it costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ember.core.pluginmanager import HOOK_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.pluginmanager import PluginManager


@dataclass
class HookTiming:
    """Calls and seconds of one plugin's implementation of one hook."""

    plugin: str
    hook: str
    calls: int = 0
    seconds: float = 0.0

    @property
    def mean(self) -> float:
        return self.seconds / self.calls if self.calls else 0.0


class PluginProfiler:
    """Times each plugin's hook implementations; ``Trainer(profiler="plugins")`` creates one."""

    def __init__(self) -> None:
        self.timings: dict[tuple[str, str], HookTiming] = {}
        #: Wall time of the training loop (on_train_start to on_train_end), for shares.
        self.training_seconds = 0.0
        self._training_started: float | None = None

    def instrument(self, manager: PluginManager) -> None:
        """Wrap every registered implementation in a timer (idempotent)."""
        for hook_name in HOOK_NAMES:
            for impl in getattr(manager.hook, hook_name).get_hookimpls():
                if getattr(impl.function, "__ember_timed__", False) or impl.wrapper or impl.hookwrapper:
                    continue
                impl.function = self._timed(impl.plugin_name, hook_name, impl.function)  # type: ignore[misc]

    def _timed(self, plugin: str, hook: str, function: Callable[..., Any]) -> Callable[..., Any]:
        timing = self.timings.setdefault((plugin, hook), HookTiming(plugin, hook))
        clock = time.perf_counter

        def timed(*args: Any) -> Any:
            start = clock()
            try:
                return function(*args)
            finally:
                timing.seconds += clock() - start
                timing.calls += 1

        timed.__ember_timed__ = True  # type: ignore[attr-defined]
        timed.__wrapped__ = function  # type: ignore[attr-defined]
        return timed

    def training_started(self) -> None:
        self._training_started = time.perf_counter()

    def training_ended(self) -> None:
        if self._training_started is not None:
            self.training_seconds += time.perf_counter() - self._training_started
            self._training_started = None

    # -------------------------------------------------------------- reports
    def per_plugin(self) -> dict[str, float]:
        """Seconds each plugin spent in hooks."""
        totals: dict[str, float] = {}
        for timing in self.timings.values():
            totals[timing.plugin] = totals.get(timing.plugin, 0.0) + timing.seconds
        return totals

    def metrics(self) -> dict[str, float]:
        """Flat numbers for the loggers: total seconds per plugin and hook, and each plugin's share."""
        numbers = {f"profile/{t.plugin}/{t.hook}_s": t.seconds for t in self.timings.values() if t.calls}
        if self.training_seconds:
            for plugin, seconds in self.per_plugin().items():
                numbers[f"profile/{plugin}/share"] = seconds / self.training_seconds
        return numbers

    def table(self) -> str:
        """A table of calls, total and mean time per plugin and hook, busiest first."""
        rows = sorted((t for t in self.timings.values() if t.calls), key=lambda t: -t.seconds)
        header = ("plugin", "hook", "calls", "total ms", "mean us", "share of training")
        lines = [header]
        for timing in rows:
            share = f"{timing.seconds / self.training_seconds:.2%}" if self.training_seconds else "-"
            lines.append(
                (
                    timing.plugin,
                    timing.hook,
                    str(timing.calls),
                    f"{timing.seconds * 1e3:.3f}",
                    f"{timing.mean * 1e6:.2f}",
                    share,
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in lines]
        text.insert(1, "  ".join("-" * width for width in widths))
        total = sum(self.per_plugin().values())
        summary = f"plugins spent {total * 1e3:.1f} ms in hooks"
        if self.training_seconds:
            summary += f" over {self.training_seconds:.2f} s of training ({total / self.training_seconds:.2%})"
        return "\n".join(["Plugin profile", *text, summary])


def make_profiler(value: Any) -> PluginProfiler | None:
    """The ``profiler`` flag: None, "plugins", or a PluginProfiler."""
    from ember.errors import MisconfigurationError

    if value is None or isinstance(value, PluginProfiler):
        return value
    if value == "plugins":
        return PluginProfiler()
    raise MisconfigurationError(f"Trainer(profiler={value!r}): accepted are None, 'plugins' or a PluginProfiler")
