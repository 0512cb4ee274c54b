"""Plugins found through the ``ember.plugins`` entry-point group, ember's own built-ins among them.

An entry point names a ``Callback`` subclass (constructed without arguments
for each Trainer), a zero-argument factory returning a Callback or a list of
them (called for each Trainer), or a module or object holding
``@ember.hookimpl`` functions. ember's built-ins are entry points of ember's
own distribution and load by the same code: only the defaults (checkpointing,
progress bar, model summary) are active without being asked for.

Installed metadata is read once per process by
:mod:`ember.core.entry_points`; :func:`clear_cache` forgets it along with
import outcomes. A plugin is blocked or disabled by name before anything of
it is imported. One that cannot be
loaded is left out with a :class:`~ember.errors.PluginWarning` naming it,
its distribution and the reason, once per process, or is an error in strict
mode. Importing this module does not import torch.
"""

from __future__ import annotations

import importlib
import sys
import time
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ember import hookspecs
from ember.callback import Callback
from ember.core import trust
from ember.core.entry_points import GROUP, SPECS_GROUP, EntryPoint, installed
from ember.core.entry_points import clear_cache as _clear_scans
from ember.core.pluginmanager import HOOK_NAMES, PluginManager, UnknownHookError
from ember.core.settings import AUTOLOAD_OFF, PLUGINS, Settings, load_settings
from ember.errors import MisconfigurationError, PluginError, PluginWarning

if TYPE_CHECKING:  # pragma: no cover
    from ember.core.trainer import Trainer

STATUSES = ("active", "available", "disabled", "blocked", "not allowed", "needs", "failed", "incompatible")

#: Built-ins active by default: entry-point name -> (the Trainer flag that turns it off,
#: the class whose instance in ``callbacks`` replaces it).
DEFAULTS: dict[str, tuple[str, str]] = {
    "model_checkpoint": ("enable_checkpointing", "ember.callback:Checkpoint"),
    "progress_bar": ("enable_progress_bar", "ember.plugins.progress_bar:ProgressBar"),
    "model_summary": ("enable_model_summary", "ember.plugins.model_summary:ModelSummary"),
}

#: Hook names in the order hookspecs.py declares them.
HOOK_ORDER: tuple[str, ...] = tuple(name for name in vars(hookspecs) if name in HOOK_NAMES)


@dataclass
class PluginRecord:
    """A plugin a Trainer registers after the user's callbacks."""

    name: str
    plugin: object
    origin: str | None = None
    source: str = "builtin"


# --------------------------------------------------------------------------- loading
class _ProcessCache:
    """What this process has imported of plugins and warned about."""

    def __init__(self) -> None:
        self.loads: dict[tuple[str, str, str], _Loaded] = {}
        self.warned: set[str] = set()


_cache = _ProcessCache()


def clear_cache() -> None:
    """Forget installed entry points, import outcomes and warnings so far (e.g. after a ``pip install``)."""
    _clear_scans()
    _cache.loads.clear()
    _cache.warned.clear()


class PluginFault(Exception):
    """Why one plugin was left out: a one-line reason, and the traceback when code raised."""

    def __init__(self, reason: str, status: str = "failed", cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.cause = cause
        self.traceback: str | None = None
        if cause is not None:
            import traceback

            self.traceback = "".join(traceback.format_exception(cause))


@dataclass
class _Loaded:
    value: Any = None
    fault: PluginFault | None = None


def load(ep: EntryPoint, trace: bool = False) -> Any:
    """The object ``ep`` names, imported once per process; raises :class:`PluginFault` if it cannot be.

    :param trace: print where the plugin came from and how long its import took (``EMBER_TRACE_PLUGINS``).
    """
    key = (ep.distribution, ep.name, ep.value)
    if key not in _cache.loads:
        started = time.perf_counter()
        try:
            _cache.loads[key] = _Loaded(ep.load())
        except Exception as error:  # any import-time failure of third-party code
            reason = f"cannot import {ep.value}: {type(error).__name__}: {error}"
            _cache.loads[key] = _Loaded(fault=PluginFault(reason, cause=error))
        if trace:
            took = (time.perf_counter() - started) * 1000
            print(
                f"ember trace: loaded plugin {ep.name!r} ({ep.value}) from {ep.origin} in {took:.1f} ms",
                file=sys.stderr,
            )
    elif trace:
        print(f"ember trace: plugin {ep.name!r} from {ep.origin}: already imported", file=sys.stderr)
    loaded = _cache.loads[key]
    if loaded.fault is not None:
        raise loaded.fault
    return loaded.value


def kind_of(value: Any) -> str:
    """``"callback"`` (a Callback subclass), ``"logger"``, ``"factory"`` or ``"hookimpl"`` (module or object)."""
    if isinstance(value, type):
        if issubclass(value, Callback):
            return "callback"
        if callable(getattr(value, "log_metrics", None)):
            return "logger"
        raise PluginFault(
            f"names the class {value.__qualname__}, which is not an ember.Callback subclass; "
            "name a Callback subclass, a factory, or a module of @ember.hookimpl functions"
        )
    if isinstance(value, Callback):
        raise PluginFault(
            f"names a {type(value).__name__} instance, which every Trainer would share; name its class or a factory"
        )
    if callable(value) and not isinstance(value, types.ModuleType):
        if hasattr(value, "ember_impl"):
            raise PluginFault(f"names the hook function {value.__name__}; name the module or object that holds it")
        return "factory"
    return "hookimpl"


def hooks_of(
    plugin: object, name: str, origin: str | None, scratch: PluginManager, requires: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The hooks ``plugin`` implements, checked by registering it on ``scratch``; raises :class:`PluginFault`.

    :param requires: the distribution's ``Requires-Dist``: an unknown hook is put down to a required
        distribution that is not installed (status ``needs``).
    """
    try:
        scratch.register(plugin, name=name, origin=origin)
    except UnknownHookError as error:
        reason = trust.needs(error.hook_name, requires)
        if reason is not None:
            raise PluginFault(reason, status="needs") from None
        message = str(error)
        raise PluginFault(message[message.index("implements") :]) from None
    except PluginError as error:
        message = str(error)
        for prefix in (f"plugin {scratch.describe(name)}", f"callback {scratch.describe(name)}"):
            message = message.removeprefix(prefix)
        raise PluginFault(message.lstrip(": ")) from None
    face = scratch.get_plugin(name)
    implemented = {caller.name for caller in scratch.get_hookcallers(face) or ()}
    scratch.unregister(name=name)
    return tuple(hook for hook in HOOK_ORDER if hook in implemented) + tuple(sorted(implemented - set(HOOK_ORDER)))


def add_declared_hooks(
    manager: PluginManager, settings: Settings, faults: list[tuple[str, str | None, PluginFault]] | None = None
) -> None:
    """Add the hookspecs of installed ``ember.hookspecs`` entry points the settings let load to ``manager``."""
    requested_dists = {ep.distribution for ep in installed() if ep.name in settings.requested}
    for ep in installed(SPECS_GROUP):
        if settings.blocked_by(ep.name) or not settings.allows(ep.name, ep.distribution):
            continue
        if not settings.autoload and ep.name not in settings.requested and ep.distribution not in requested_dists:
            continue
        try:
            value = load(ep, settings.trace)
            if not isinstance(value, (types.ModuleType, type)):
                raise PluginFault(f"names {value!r}; an {SPECS_GROUP} entry point names a module or class of hookspecs")
            try:
                manager.add_hookspecs(value, origin=ep.origin)
            except ValueError as error:  # pluggy: a name declared twice, or no hookspecs at all
                raise PluginFault(f"cannot add the hookspecs of {ep.value}: {error}") from None
        except PluginFault as fault:
            if faults is not None:
                faults.append((ep.name, ep.origin, fault))


def declared_hooks(settings: Settings | None = None) -> dict[str, tuple[Any, str]]:
    """Hooks installed distributions declare: name -> (pluggy's ``HookSpec``, ``"DIST VERSION"``)."""
    manager = PluginManager()
    add_declared_hooks(manager, settings or load_settings())
    return {name: (getattr(manager.hook, name).spec, origin) for name, origin in manager.declared_by.items()}


def class_hooks(
    cls: type[Callback], name: str, origin: str | None, scratch: PluginManager, requires: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """A Callback class's hooks, checked without running its constructor."""
    try:
        bare = cls.__new__(cls)
    except Exception as error:  # an exotic __new__ that needs arguments
        raise PluginFault(f"cannot inspect {cls.__qualname__}: {error}", cause=error) from None
    return hooks_of(bare, name, origin, scratch, requires)


def overridden_hooks(cls: type[Callback]) -> tuple[str, ...]:
    """The hooks a Callback class overrides, unchecked: what registering an instance would register."""

    def overrides(hook: str) -> bool:
        return next(klass for klass in cls.__mro__ if hook in vars(klass)) is not Callback

    return tuple(hook for hook in HOOK_ORDER if overrides(hook))


def required_arguments(cls: type) -> list[str]:
    """The constructor's parameters that have no default."""
    import inspect

    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


_NO_ARGUMENTS = "an autoloaded plugin class must work without arguments (or name a factory)"


def instantiate(
    value: Any, kind: str, user_plugins: list[Any], arguments: dict[str, Any] | None = None, bare: bool = False
) -> list[object]:
    """The plugin objects an entry point's ``value`` contributes to one Trainer; none where the user already passed its class.

    :param arguments: constructor arguments for a built-in a Trainer flag configures (``max_time``'s Timer).
    :param bare: make Callback instances without running their constructors (to inspect hooks and order).
    """
    if kind == "hookimpl":
        return [] if any(p is value for p in user_plugins) else [value]
    if kind == "callback":
        if any(isinstance(p, value) for p in user_plugins):
            return []
        if bare:
            return [value.__new__(value)]
        missing = [name for name in required_arguments(value) if name not in (arguments or {})]
        if missing:
            raise PluginFault(f"{value.__qualname__}() requires {', '.join(missing)}; {_NO_ARGUMENTS}")
        made: Any = _call(value, "constructor", **(arguments or {}))
    elif kind == "factory":
        made = _call(value, "factory")
    else:
        return []
    items = list(made) if isinstance(made, (list, tuple)) else [made]
    for item in items:
        if not isinstance(item, Callback):
            raise PluginFault(f"factory returned {item!r}; expected a Callback or a list of Callbacks")
    return [item for item in items if not any(isinstance(p, type(item)) for p in user_plugins)]


def _call(function: Any, what: str, **arguments: Any) -> Any:
    try:
        return function(**arguments)
    except Exception as error:  # third-party code
        raise PluginFault(f"{what} raised {type(error).__name__}: {error}", cause=error) from None


# ---------------------------------------------------------------------------- reports
@dataclass
class PluginReport:
    """One row of ``ember plugins list``."""

    name: str
    distribution: str | None
    version: str | None
    source: str
    status: str
    reason: str | None = None
    hooks: tuple[str, ...] = ()
    entry_point: str | None = None
    kind: str | None = None
    traceback: str | None = field(default=None, repr=False)
    value: Any = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The object ``ember plugins list --json`` prints."""
        keys = ("name", "distribution", "version", "source", "status", "reason")
        return {**{key: getattr(self, key) for key in keys}, "object": self.entry_point, "hooks": list(self.hooks)}


def survey(settings: Settings | None = None) -> list[PluginReport]:
    """Every installed plugin with what a default Trainer would do with it; what cannot load is reported.

    Active plugins and built-ins are imported to see their hooks (a factory is
    called); blocked, disabled and incompatible ones are not imported at all.
    """
    settings = settings or load_settings()
    scratch = PluginManager()
    add_declared_hooks(scratch, settings)
    reports: list[PluginReport] = []
    for ep, taken in _unique(installed()):
        report = PluginReport(ep.name, ep.distribution, ep.version, ep.source, "active", entry_point=ep.value)
        reports.append(report)
        try:
            if taken is not None:
                raise PluginFault(f"the name is taken by {taken.origin} ({taken.value})")
            report.status, report.reason = _before_import(ep, settings)
            if report.status not in ("active", "available"):
                continue
            report.value = load(ep)
            report.kind = kind_of(report.value)
            if report.kind == "callback" and ep.source == "builtin":  # ember's tests check its own hooks
                report.hooks = overridden_hooks(report.value)
            elif report.kind == "callback":
                report.hooks = class_hooks(report.value, ep.name, ep.origin, scratch, ep.requires)
                missing = required_arguments(report.value)
                if missing and report.status == "active":
                    raise PluginFault(f"{report.value.__qualname__}() requires {', '.join(missing)}; {_NO_ARGUMENTS}")
            elif report.kind == "factory":
                if report.status == "active":
                    hooks: set[str] = set()
                    for index, item in enumerate(instantiate(report.value, "factory", [])):
                        hooks.update(hooks_of(item, f"{ep.name}#{index}", ep.origin, scratch, ep.requires))
                    report.hooks = tuple(hook for hook in HOOK_ORDER if hook in hooks)
            elif report.kind == "hookimpl":
                report.hooks = hooks_of(report.value, ep.name, ep.origin, scratch, ep.requires)
            else:
                report.status = "available" if report.status == "active" else report.status
                report.reason = report.reason or "a logger: pass it to Trainer(logger=...)"
        except PluginFault as fault:
            report.status, report.reason, report.traceback = fault.status, fault.reason, fault.traceback
    trust.mark_state_key_collisions(reports, instantiate)
    known = {report.name for report in reports}
    for problem in trust.missing_requirements(settings):
        reports.append(PluginReport(problem.split(" ", 1)[0], None, None, "required", "failed", problem))
    for name in settings.requested:
        if name not in known:
            reports.append(PluginReport(name, None, None, "entrypoint", "failed", _not_installed(name)))
    return reports


def _unique(eps: tuple[EntryPoint, ...]) -> Iterator[tuple[EntryPoint, EntryPoint | None]]:
    """Each entry point with the one that took its name first (None if it is the first)."""
    first: dict[str, EntryPoint] = {}
    for ep in sorted(eps, key=lambda ep: ep.source != "builtin"):
        yield ep, first.get(ep.name)
        first.setdefault(ep.name, ep)


def _before_import(ep: EntryPoint, settings: Settings) -> tuple[str, str | None]:
    """The status settings and metadata alone decide: nothing of the plugin is imported here."""
    blocked_by = settings.blocked_by(ep.name)
    if blocked_by is not None:
        return "blocked", f"blocked by {blocked_by}"
    if ep.source == "builtin":
        return ("active", None) if ep.name in DEFAULTS or ep.name in settings.requested else ("available", None)
    if not settings.autoload and ep.name not in settings.requested:
        return "disabled", f"autoloading is off ({AUTOLOAD_OFF}); name it in {PLUGINS} to load it"
    if not settings.allows(ep.name, ep.distribution):
        return "not allowed", f"not in {settings.allowed_by}; add {ep.name!r} or {ep.distribution!r} to load it"
    incompatible = ep.incompatibility()
    if incompatible is not None:
        raise PluginFault(incompatible, status="incompatible")
    return "active", None


def _not_installed(name: str) -> str:
    return f"{PLUGINS} names {name!r}, but no installed distribution has an {GROUP} entry point of that name"


# ---------------------------------------------------------------------------- Trainer
def plugins_for_trainer(
    trainer: Trainer,
    user_plugins: list[Any],
    enable_checkpointing: bool | None,
    enable_progress_bar: bool | None,
    enable_model_summary: bool | None,
    disable_plugins: Any,
    strict: bool | None,
    bare: bool = False,
) -> list[PluginRecord]:
    """The plugins a Trainer registers after the user's: the defaults its flags leave on, then third parties'.

    With ``bare``, Callback classes are not constructed (``ember hooks --order`` inspects them without torch).

    Raises :class:`~ember.errors.PluginError` in strict mode when a plugin cannot be loaded; otherwise
    each one left out is a :class:`~ember.errors.PluginWarning`, once per process.
    """
    settings = load_settings(disable_plugins, strict)
    trust.check_required(settings)
    trainer.plugin_manager.reverse_end_hooks = settings.reverse_end_hooks
    if settings.trace:
        trainer.plugin_manager.trace_calls()
    flags = {
        "enable_checkpointing": enable_checkpointing,
        "enable_progress_bar": enable_progress_bar,
        "enable_model_summary": enable_model_summary,
    }
    builtins = {ep.name: ep for ep in installed() if ep.source == "builtin"}
    wanted: list[tuple[EntryPoint, dict[str, Any]]] = []
    faults: list[tuple[str, str | None, PluginFault]] = []
    add_declared_hooks(trainer.plugin_manager, settings, faults)

    def want_builtin(name: str, **arguments: Any) -> None:
        if name in builtins:
            wanted.append((builtins[name], arguments))
        else:
            reason = f"ember's metadata has no {GROUP} entry point {name!r}; reinstall ember (pip install -e .)"
            faults.append((name, None, PluginFault(reason)))

    if trainer.max_time is not None:
        want_builtin("timer", duration=trainer.max_time, interval="step")
    for name, (flag, replaced_by) in DEFAULTS.items():
        given = [p for p in user_plugins if _is_instance(p, replaced_by)]
        if flags[flag] is False:
            if given:
                raise MisconfigurationError(
                    f"Trainer({flag}=False) but callbacks holds {type(given[0]).__name__}; remove one of the two"
                )
            continue
        if not (given or settings.blocked_by(name) or (trainer.fast_dev_run and name == "model_summary")):
            want_builtin(_default_variant(name, user_plugins))
    wanted_names = {ep.name for ep, _ in wanted}
    for name in settings.requested:
        if name in builtins and name not in DEFAULTS and not settings.blocked_by(name) and name not in wanted_names:
            want_builtin(name)
    for ep, taken in _unique(installed()):
        if ep.source == "builtin" or settings.blocked_by(ep.name):
            continue
        if not settings.autoload and ep.name not in settings.requested:
            continue
        if not settings.allows(ep.name, ep.distribution):
            continue
        if taken is not None:
            faults.append((ep.name, ep.origin, PluginFault(f"the name is taken by {taken.origin} ({taken.value})")))
        else:
            wanted.append((ep, {}))
    installed_names = {ep.name for ep in installed()}
    faults += [(n, None, PluginFault(_not_installed(n))) for n in settings.requested if n not in installed_names]

    records: list[PluginRecord] = []
    scratch: PluginManager | None = None  # checks third parties' hooks; ember's own are checked by its tests
    for ep, arguments in wanted:
        try:
            incompatible = ep.incompatibility()
            if incompatible is not None:
                raise PluginFault(incompatible, status="incompatible")
            value = load(ep, settings.trace)
            plugins = instantiate(value, kind_of(value), user_plugins, arguments, bare)
            names = [ep.name if i == 0 else f"{ep.name}#{i + 1}" for i in range(len(plugins))]
            if ep.source != "builtin":
                if scratch is None:
                    scratch = PluginManager()
                    add_declared_hooks(scratch, settings)
                for plugin, name in zip(plugins, names):
                    hooks_of(plugin, name, ep.origin, scratch, ep.requires)
        except PluginFault as fault:
            faults.append((ep.name, ep.origin, fault))
            continue
        records += [PluginRecord(n, p, ep.origin, ep.source) for p, n in zip(plugins, names)]
    _report(faults, settings.strict)
    return records


#: Default plugins that another user plugin swaps for a variant, as Lightning does: a RichProgressBar
#: among the callbacks makes the default model summary a RichModelSummary.
VARIANTS: dict[str, tuple[str, str]] = {
    "model_summary": ("ember.plugins.rich_progress:RichProgressBar", "rich_model_summary"),
}


def _default_variant(name: str, user_plugins: list[Any]) -> str:
    """The entry-point name of the default plugin ``name`` stands for, given the user's plugins."""
    if name in VARIANTS:
        base, variant = VARIANTS[name]
        if any(_is_instance(p, base) for p in user_plugins):
            return variant
    return name


def replaced_defaults(user_plugins: list[Any]) -> set[str]:
    """The Trainer flags (``enable_checkpointing``, ...) whose default plugin one of ``user_plugins`` replaces."""
    return {flag for flag, base in DEFAULTS.values() if any(_is_instance(p, base) for p in user_plugins)}


def _is_instance(plugin: Any, target: str) -> bool:
    module, _, attribute = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError):  # that built-in is missing; loading it will report why
        return False
    return isinstance(plugin, cls)


def fault_message(name: str, origin: str | None, fault: PluginFault) -> str:
    """``plugin 'NAME' (DIST VERSION) was left out (STATUS): REASON`` on one line."""
    where = f" ({origin})" if origin else ""
    hint = f"; `ember plugins show {name}` prints the traceback" if fault.traceback else ""
    return f"plugin {name!r}{where} was left out ({fault.status}): {fault.reason}{hint}"


def _report(faults: list[tuple[str, str | None, PluginFault]], strict: bool) -> None:
    if not faults:
        return
    lines = [fault_message(name, origin, fault) for name, origin, fault in faults]
    if strict:
        raise PluginError("strict plugins: " + "\n".join(lines)) from faults[0][2].cause
    for line in lines:
        if line not in _cache.warned:
            _cache.warned.add(line)
            warnings.warn(line, PluginWarning, stacklevel=4)
