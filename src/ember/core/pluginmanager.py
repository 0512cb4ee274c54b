"""ember's host policy on top of pluggy: what counts as a hook, call order, and errors.

* A :class:`~ember.Callback` contributes the hooks it overrides and nothing
  else; they are called positionally, as Lightning calls them, so parameter
  names may differ from the spec's and ``*args`` works.
* Any other object or module contributes its ``@ember.hookimpl`` functions,
  which pluggy binds by name; a name the spec lacks, or a hook ember does not
  have, is a :class:`~ember.errors.PluginError` at registration.
* Implementations run in registration order (first registered, first called)
  within each of pluggy's groups: ``tryfirst``, plain, ``trylast``; wrappers
  surround them, the first registered outermost. This is Lightning's list
  order, where pluggy alone would call the last registered first. An
  ordering option on a base class's method is inherited by its overrides, so
  a subclass of ModelCheckpoint still runs last. ``ember.order(before=,
  after=)`` declarations then move implementations as little as they require
  (:mod:`ember.core.ordering`).

Importing this module does not import torch.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pluggy
from pluggy._callers import _multicall

from ember import hookspecs
from ember.callback import Callback
from ember.core.hook_callers import written_caller
from ember.core.ordering import Node, declaration, resolve
from ember.errors import PluginError
from ember.markers import ORDER_ATTR, PROJECT_NAME, Order

#: Lightning's Callback hooks: what a Callback method of the same name implements, called positionally.
HOOK_NAMES: frozenset[str] = frozenset(
    name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), PROJECT_NAME + "_spec")
) - frozenset(hookspecs.TWO_WAY_HOOKS)


def spec_argnames(hook_name: str) -> tuple[str, ...]:
    """The argument names of a hook, in the order Lightning passes them."""
    return tuple(inspect.signature(getattr(hookspecs, hook_name)).parameters)


_IMPL_ATTR = PROJECT_NAME + "_impl"
_SPEC_ATTR = PROJECT_NAME + "_spec"


class UnknownHookError(PluginError):
    """A plugin implements a hook no loaded hookspec declares (perhaps one a missing distribution declares)."""

    def __init__(self, message: str, hook_name: str) -> None:
        super().__init__(message)
        self.hook_name = hook_name


_PLAIN_OPTS: dict[str, Any] = {"tryfirst": False, "trylast": False, "wrapper": False, "hookwrapper": False}


class PluginManager(pluggy.PluginManager):
    """The plugin manager each Trainer owns; see the module docstring for its rules."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        #: Every hook name this manager knows: Lightning's, the two-way hooks, and those plugins declared.
        self.hook_names: set[str] = set()
        #: Hooks declared by distributions (``ember.hookspecs`` entry points): hook name -> "DIST VERSION".
        self.declared_by: dict[str, str] = {}
        self.add_hookspecs(hookspecs)
        self._rank: dict[int, int] = {}
        self._next_rank = 0
        self._faces: dict[int, CallbackHooks] = {}
        self._origins: dict[str, str] = {}
        self._plain: set[str] = set()
        self._inner_hookexec = self._call_implementations
        #: Call ``*_end`` hooks and ``teardown`` in reverse registration order (``end_hooks = "reverse"``).
        self.reverse_end_hooks = False
        #: Whether any plugin registered so far declared an order: until then, sorting is all it takes.
        self._declared = False
        #: Changes to what a hook call does (registrations, monitoring): a caller written before one is outdated.
        self._generation = 0

    # ---------------------------------------------------------- registration
    def add_hookspecs(self, module_or_class: types.ModuleType | type, origin: str | None = None) -> None:
        """Add hookspecs, as pluggy does, remembering their names and, for a distribution's, where they came from.

        A plugin may also carry its hookspecs as ``__ember_hookspecs__`` (a class or module): they are
        added when it is registered, so it must come before the plugins implementing them.
        """
        super().add_hookspecs(module_or_class)
        for name in _spec_names(module_or_class):
            self.hook_names.add(name)
            if origin is not None:
                self.declared_by[name] = origin

    def register(self, plugin: object, name: str | None = None, origin: str | None = None) -> str | None:
        """Register a Callback or a hookimpl plugin; return its name, or None if the name is blocked.

        :param origin: where the plugin comes from, e.g. ``"ember-foo 1.2"``, for error messages.
        """
        face: object = plugin
        name_given = name
        name = name or self._unique_name(plugin)
        if origin is not None:
            self._origins[name] = origin
        specs = getattr(plugin, "__ember_hookspecs__", None)
        if specs is not None and not any(getattr(self.hook, h, None) for h in _spec_names(specs)):
            self.add_hookspecs(specs, origin=origin or name)
        self._check_hook_names(plugin, name)
        if isinstance(plugin, Callback):
            face = CallbackHooks(plugin, self._label(plugin, name_given, origin), self.hook_names - HOOK_NAMES)
        try:
            registered = super().register(face, name)
        except pluggy.PluginValidationError as error:
            raise PluginError(self._explain(plugin, name, str(error))) from None
        if registered is None:
            return None
        if face is not plugin:
            self._faces[id(plugin)] = face  # type: ignore[assignment]
        self._rank[id(face)] = self._next_rank
        self._next_rank += 1
        callers = self.get_hookcallers(face) or []
        self._declared = self._declared or _declares_order(plugin, face, callers)
        for caller in callers:
            if isinstance(face, CallbackHooks) and caller.name in HOOK_NAMES:
                for impl in caller._hookimpls:  # a method called as is gets every argument (pluggy sees none in *args)
                    if impl.plugin is face and impl.function is face.targets[caller.name]:
                        impl.argnames = spec_argnames(caller.name)  # type: ignore[misc]
            self._arrange(caller)
            self._note_plain(caller)
        self._generation += 1
        return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any | None:
        """Unregister a plugin given as registered (a Callback, module or object) or by name."""
        if plugin is not None:
            plugin = self._faces.pop(id(plugin), plugin)
        removed = super().unregister(plugin=plugin, name=name)
        self._generation += 1
        for hook_name in self.hook_names:
            self._note_plain(getattr(self.hook, hook_name))
        if isinstance(removed, CallbackHooks):
            self._faces.pop(id(removed.callback), None)
            return removed.callback
        return removed

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        if isinstance(plugin, CallbackHooks):
            return plugin.opts.get(name)
        return super().parse_hookimpl_opts(plugin, name)

    # ------------------------------------------------------------------ calls
    def add_hookcall_monitoring(self, before: Any, after: Any) -> Callable[[], None]:
        """pluggy's hook-call monitoring; written callers step aside for it while it is on."""
        undo_monitoring = super().add_hookcall_monitoring(before, after)
        self._generation += 1

        def undo() -> None:
            undo_monitoring()
            self._generation += 1

        return undo

    def _note_plain(self, caller: pluggy.HookCaller) -> None:
        """Remember whether a hook has only plain implementations (no wrappers, no defaulted arguments)."""
        impls = caller.get_hookimpls()
        if all(not (i.wrapper or i.hookwrapper or i.kwargnames) for i in impls):
            self._plain.add(caller.name)
        else:
            self._plain.discard(caller.name)

    def _call_implementations(
        self,
        hook_name: str,
        hook_impls: Sequence[pluggy.HookImpl],
        caller_kwargs: Mapping[str, object],
        firstresult: bool,
    ) -> Any:
        """pluggy's call loop, with a shorter path for hooks whose implementations are all plain.

        Callbacks of one hook share its arguments, so the positional argument
        list is built once and reused while consecutive implementations want
        the same names. Wrappers and anything unusual go through pluggy's own
        ``_multicall``; results, ``firstresult`` and errors behave the same.
        """
        if hook_name not in self._plain:
            return _multicall(hook_name, hook_impls, caller_kwargs, firstresult)
        results: list[object] = []
        last: tuple[str, ...] | None = None
        arguments: list[object] = []
        for impl in reversed(hook_impls):
            names = impl.argnames
            if names != last:
                try:
                    arguments = [caller_kwargs[name] for name in names]
                except KeyError as error:
                    raise pluggy.HookCallError(f"hook call must provide argument {error.args[0]!r}") from error
                last = names
            result = impl.function(*arguments)
            if result is not None:
                if firstresult:
                    return result
                results.append(result)
        return None if firstresult else results

    def trace_calls(self) -> None:
        """Print each hook call with its duration to stderr (``EMBER_TRACE_PLUGINS=1``)."""
        import sys
        import time

        started: list[float] = []

        def before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]) -> None:
            started.append(time.perf_counter())

        def after(outcome: object, hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: object) -> None:
            took = (time.perf_counter() - started.pop()) * 1000
            names = ", ".join(impl.plugin_name for impl in reversed(impls))
            print(f"ember trace: {hook_name} [{names}] {took:.3f} ms", file=sys.stderr)

        self.add_hookcall_monitoring(before, after)

    # ------------------------------------------------------------------ order
    def _arrange(self, caller: pluggy.HookCaller) -> None:
        """Put a hook's implementations in call order: pluggy's groups, registration order, declared constraints."""
        if not self._declared:
            reverse = self.reverse_end_hooks and (caller.name.endswith("_end") or caller.name == "teardown")
            caller._hookimpls.sort(key=self._group_key(1 if reverse else -1))
            return
        calls = self._nodes(caller)
        wrappers = [n for n in calls if n.impl.wrapper or n.impl.hookwrapper]
        plain = [n for n in calls if not (n.impl.wrapper or n.impl.hookwrapper)]
        if any(n.before or n.after for n in calls):
            wrappers, plain = resolve(caller.name, wrappers), resolve(caller.name, plain)
        # pluggy keeps the others then the wrappers, each in the reverse of call order
        caller._hookimpls[:] = [n.impl for n in reversed(plain)] + [n.impl for n in reversed(wrappers)]

    def _nodes(self, caller: pluggy.HookCaller) -> list[Node]:
        """The implementations of a hook in their order before declared constraints, as graph nodes."""
        reverse = self.reverse_end_hooks and (caller.name.endswith("_end") or caller.name == "teardown")
        impls = sorted(caller.get_hookimpls(), key=self._group_key(1 if reverse else -1))
        ordinal = {r: n for n, r in enumerate(sorted(self._rank.values()), 1)}
        nodes = []
        for impl in reversed(impls):
            plugin = self.plugin_of(impl)
            source = impl.plugin.targets.get(caller.name) if isinstance(impl.plugin, CallbackHooks) else None
            before, after = declaration(plugin, source or impl.function)
            position = f"registered {_ordinal(ordinal.get(self._rank.get(id(impl.plugin), -1), 0))}"
            group = "wrapper" if impl.wrapper or impl.hookwrapper else ""
            group += " tryfirst" if impl.tryfirst else " trylast" if impl.trylast else ""
            reason = ", ".join(filter(None, [group.strip(), position, "end hooks reversed" if reverse else ""]))
            nodes.append(Node(impl.plugin_name, plugin, impl, reason, before, after))
        return nodes

    def _group_key(self, sign: int) -> Callable[[pluggy.HookImpl], tuple[bool, int, int]]:
        """pluggy's storage order (trylast, plain, tryfirst, then wrappers; each last-called first) by rank."""
        rank = self._rank
        return lambda impl: (
            bool(impl.wrapper or impl.hookwrapper),
            int(impl.tryfirst) - int(impl.trylast),
            sign * rank.get(id(impl.plugin), -1),
        )

    def call_order(self, hook_name: str) -> list[tuple[str, object, str]]:
        """``(plugin name, plugin, why it is there)`` for each implementation of a hook, in call order."""
        calls = self._nodes(getattr(self.hook, hook_name))
        wrappers = resolve(hook_name, [n for n in calls if n.impl.wrapper or n.impl.hookwrapper])
        plain = resolve(hook_name, [n for n in calls if not (n.impl.wrapper or n.impl.hookwrapper)])
        return [(n.name, n.plugin, "; ".join([n.base_reason, *n.reasons])) for n in wrappers + plain]

    # ------------------------------------------------------------- questions
    def plugin_of(self, impl: pluggy.HookImpl) -> object:
        """The object the user registered for ``impl``: the Callback, not its face."""
        return impl.plugin.callback if isinstance(impl.plugin, CallbackHooks) else impl.plugin

    def callers(self) -> dict[str, Callable[..., Any]]:
        """A caller for each hook that has at least one implementation, by hook name.

        Each takes the hook's arguments as keywords, like ``manager.hook.NAME``,
        but skips pluggy's per-call argument checks: the Trainer always passes
        every argument the spec names.
        """
        return {
            name: self._direct(caller)
            for name in self.hook_names
            if (caller := getattr(self.hook, name)).get_hookimpls()
        }

    def _direct(self, caller: pluggy.HookCaller) -> Callable[..., Any]:
        """The hook's caller: its calls written out (:mod:`ember.core.hook_callers`) when every implementation is
        plain, else straight to the call loop pluggy's ``_hookexec`` would reach (hook-call monitoring, as
        ``trace_calls`` uses it, replaces that loop, so it still sees every call)."""
        name = caller.name
        implementations = caller._hookimpls  # pluggy changes this list in place, on (un)register and ordering
        firstresult = bool(caller.spec and caller.spec.opts.get("firstresult"))

        def call(**kwargs: Any) -> Any:
            return self._inner_hookexec(name, implementations[:], kwargs, firstresult)

        call.__name__ = call.__qualname__ = name
        monitored = self._inner_hookexec != self._call_implementations
        if monitored or name not in self._plain or caller.spec is None or caller.is_historic():
            return call
        in_order = list(reversed(implementations))
        return written_caller(name, caller.spec.argnames, in_order, firstresult, self, call) or call

    def implementations(self, hook_name: str) -> Iterator[tuple[str, object, Callable[..., Any]]]:
        """``(plugin name, plugin, function)`` for each implementation of a hook, in call order."""
        for impl in reversed(getattr(self.hook, hook_name).get_hookimpls()):
            yield impl.plugin_name, self.plugin_of(impl), impl.function

    def origin(self, name: str) -> str | None:
        """Where the plugin registered under ``name`` came from, if known."""
        return self._origins.get(name)

    def blame(self, exception: BaseException) -> tuple[str, str] | None:
        """``(plugin name, hook name)`` of the implementation ``exception`` was raised in, if any."""
        code_owner: dict[types.CodeType, tuple[str, str]] = {}
        for hook_name in self.hook_names:
            for impl in getattr(self.hook, hook_name).get_hookimpls():
                for function in (impl.function, getattr(impl.plugin, "targets", {}).get(hook_name)):
                    if function is None:
                        continue
                    code = getattr(inspect.unwrap(getattr(function, "__func__", function)), "__code__", None)
                    if code is not None:
                        code_owner[code] = (impl.plugin_name, hook_name)
        owner = None
        traceback = exception.__traceback__
        while traceback is not None:
            owner = code_owner.get(traceback.tb_frame.f_code, owner)
            traceback = traceback.tb_next
        return owner

    def describe(self, name: str) -> str:
        """``'NAME'`` or ``'NAME' (from ORIGIN)`` for messages."""
        origin = self._origins.get(name)
        return f"{name!r}" + (f" (from {origin})" if origin else "")

    # -------------------------------------------------------------- helpers
    def _unique_name(self, plugin: object) -> str:
        base = getattr(plugin, "__name__", None) if isinstance(plugin, types.ModuleType) else None
        base = base or type(plugin).__name__
        name, n = base, 1
        while name in self._name2plugin:
            n += 1
            name = f"{base}#{n}"
        return name

    def _label(self, plugin: object, name: str | None, origin: str | None) -> str:
        label = repr(name) if name else type(plugin).__name__
        return label + (f" (from {origin})" if origin else "")

    def _check_hook_names(self, plugin: object, name: str) -> None:
        marked: dict[str, Any]
        if isinstance(plugin, Callback):  # only marked methods, without running properties
            marked = {**_marked_methods(type(plugin)), **_marked_values(vars(plugin))}  # type: ignore[arg-type]
        else:
            parse = super().parse_hookimpl_opts
            marked = {attr: parse(plugin, attr) for attr in dir(plugin)}
        for attr, opts in marked.items():
            if opts is None or opts.get("optionalhook"):
                continue
            hook_name = opts.get("specname") or attr
            if hook_name not in self.hook_names:
                close = closest(hook_name, self.hook_names)
                hint = f"; did you mean {close!r}?" if close else "; `ember hooks` lists them"
                message = f"plugin {self.describe(name)} implements unknown hook {hook_name!r}{hint}"
                raise UnknownHookError(message, hook_name)

    def _explain(self, plugin: object, name: str, pluggy_message: str) -> str:
        for hook_name in self.hook_names:
            if f"hook {hook_name!r}" in pluggy_message:
                if "can not be found in the hookspec" in pluggy_message:
                    bad = pluggy_message.split("Argument(s) ")[1].split(" are declared")[0].strip("{}")
                    return (
                        f"plugin {self.describe(name)}: hook {hook_name!r} takes argument(s) {bad}, "
                        f"which the hook does not have; it accepts any of: {', '.join(spec_argnames(hook_name))}"
                    )
                return f"plugin {self.describe(name)}: hook {hook_name!r}: {pluggy_message.splitlines()[-1]}"
        return f"plugin {self.describe(name)}: {pluggy_message}"


class CallbackHooks:
    """The face a Callback shows pluggy: one attribute per hook it overrides.

    Each attribute is either the callback's bound method, when its parameters
    are exactly the spec's or it takes them all by ``*args`` (the plugin
    manager then passes it every argument), or an adapter that passes the
    spec's arguments positionally, as Lightning does.
    """

    def __init__(self, callback: Callback, label: str, extra_hooks: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.callback = callback
        self.opts: dict[str, dict[str, Any]] = {}
        self.targets: dict[str, Callable[..., Any]] = {}
        for hook_name in sorted(extra_hooks):  # two-way and plugin-declared hooks: @hookimpl methods, bound by name
            method = getattr(callback, hook_name, None)
            if method is not None and hasattr(method, _IMPL_ATTR):
                self.targets[hook_name] = method
                setattr(self, hook_name, method)
                self.opts[hook_name] = {**_PLAIN_OPTS, **getattr(method, _IMPL_ATTR)}
        for hook_name in sorted(HOOK_NAMES):
            function = _override(callback, hook_name)
            if function is None:
                continue
            argnames = spec_argnames(hook_name)
            self.targets[hook_name] = function
            call = _mock_call if is_mock(callback) else _positional
            setattr(self, hook_name, call(function, hook_name, argnames, label))
            self.opts[hook_name] = _inherited_opts(callback, hook_name)

    def __repr__(self) -> str:
        return f"<hooks of {self.callback!r}>"


def _override(callback: Callback, hook_name: str) -> Callable[..., Any] | None:
    """The callback's own implementation of ``hook_name``, or None if it only inherits Callback's no-op.

    A ``unittest.mock`` mock made with ``spec=`` a Callback implements every hook, as Lightning calls them all.
    """
    if is_mock(callback):
        return getattr(callback, hook_name)  # type: ignore[no-any-return]
    own = vars(callback).get(hook_name)
    if callable(own):
        return own
    for klass in type(callback).__mro__:
        if hook_name in klass.__dict__:
            return None if klass is Callback else getattr(callback, hook_name)
    return None


def is_mock(value: object) -> bool:
    """Whether ``value`` is a ``unittest.mock`` mock (checked without importing unittest.mock)."""
    mock = sys.modules.get("unittest.mock")
    return mock is not None and isinstance(value, mock.NonCallableMock)


def has_hookimpls(plugin: object) -> bool:
    """Whether ``plugin`` (an object, class or module) has at least one ``@ember.hookimpl`` function."""
    for attr in dir(plugin):
        value = inspect.getattr_static(plugin, attr, None)
        value = getattr(value, "__func__", value)
        if isinstance(getattr(value, _IMPL_ATTR, None), dict):
            return True
    return False


def _inherited_opts(callback: Callback, hook_name: str) -> dict[str, Any]:
    """Ordering options from the nearest ``@hookimpl`` marker on this hook up the class hierarchy."""
    if is_mock(callback):
        return dict(_PLAIN_OPTS)
    own = vars(callback).get(hook_name)
    candidates = [own] if own is not None else []
    candidates += [k.__dict__[hook_name] for k in type(callback).__mro__ if hook_name in k.__dict__]
    for candidate in candidates:
        opts = getattr(candidate, _IMPL_ATTR, None)
        if opts is not None:
            return {**_PLAIN_OPTS, **opts}
    return dict(_PLAIN_OPTS)


def _positional(
    function: Callable[..., Any], hook_name: str, argnames: tuple[str, ...], label: str
) -> Callable[..., Any]:
    """``function`` itself when pluggy can call it as is, else an adapter with the spec's parameters."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # a builtin or C callable: pass everything
        return _adapter(argnames, len(argnames))(function)
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    plain = inspect.isfunction(function) or inspect.ismethod(function)  # pluggy binds only these
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        keyword_only = any(p.kind is p.KEYWORD_ONLY and p.default is p.empty for p in parameters)
        if plain and not keyword_only and tuple(p.name for p in positional) == argnames[: len(positional)]:
            return function  # e.g. ``def on_train_batch_end(self, trainer, *args)``: called with every argument
        return _adapter(argnames, len(argnames))(function)
    required = [p for p in positional if p.default is p.empty]
    if len(required) > len(argnames):
        raise PluginError(
            f"callback {label}: {hook_name}() requires {len(required)} arguments "
            f"({', '.join(p.name for p in required)}) but the hook passes {len(argnames)}: "
            f"({', '.join(argnames)})"
        )
    if plain and tuple(p.name for p in positional) == argnames and len(required) == len(argnames):
        return function
    return _adapter(argnames, min(len(positional), len(argnames)))(function)


def _mock_call(function: Any, hook_name: str, argnames: tuple[str, ...], label: str) -> Callable[..., Any]:
    """A mock's hook, called as Lightning calls it, so ``assert_called_with`` reads the same: ``stage`` by keyword."""
    if argnames != ("trainer", "pl_module", "stage"):
        return _adapter(argnames, len(argnames))(function)

    def hook(trainer: Any, pl_module: Any, stage: str) -> Any:
        return function(trainer, pl_module, stage=stage)

    return hook


_ADAPTERS: dict[tuple[tuple[str, ...], int], Callable[[Callable[..., Any]], Callable[..., Any]]] = {}


def _adapter(argnames: tuple[str, ...], count: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A factory of functions named by the spec that pass the first ``count`` arguments on positionally.

    pluggy binds by the parameter names in a function's code object, so the
    adapter's code must carry the spec's names; it is compiled once per shape.
    """
    key = (argnames, count)
    if key not in _ADAPTERS:
        params = ", ".join(argnames)
        source = f"def make(target):\n    def hook({params}):\n        return target({', '.join(argnames[:count])})\n    return hook\n"
        namespace: dict[str, Any] = {}
        exec(compile(source, f"<ember adapter {params}>", "exec"), namespace)  # noqa: S102
        _ADAPTERS[key] = namespace["make"]
    return _ADAPTERS[key]


@functools.cache
def _marked_methods(cls: type) -> dict[str, dict[str, Any]]:
    """A class's ``@hookimpl``-marked attributes with their options, the most derived definition winning."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        found.update({attr: getattr(value, _IMPL_ATTR, None) for attr, value in vars(klass).items()})
    return {attr: opts for attr, opts in found.items() if opts is not None}


def _marked_values(namespace: Mapping[str, object]) -> dict[str, dict[str, Any]]:
    return {attr: opts for attr, value in namespace.items() if (opts := getattr(value, _IMPL_ATTR, None)) is not None}


def _declares_order(plugin: object, face: object, callers: Sequence[pluggy.HookCaller]) -> bool:
    """Whether ``plugin`` carries an ``ember.order`` declaration, on itself or one of its hook functions."""
    if isinstance(getattr(plugin, ORDER_ATTR, None), Order):
        return True
    for caller in callers:
        for impl in caller.get_hookimpls():
            if impl.plugin is face:
                source = face.targets.get(caller.name) if isinstance(face, CallbackHooks) else impl.function
                if isinstance(getattr(getattr(source, "__func__", source), ORDER_ATTR, None), Order):
                    return True
    return False


def _spec_names(holder: object) -> list[str]:
    return [name for name in dir(holder) if hasattr(getattr(holder, name, None), _SPEC_ATTR)]


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``name`` (a typo'd hook or plugin name), or None when none is close."""
    import difflib

    matches = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.8)
    return matches[0] if matches else None
