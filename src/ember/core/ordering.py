"""Declared call order: ``ember.order(before=..., after=...)`` resolved as a graph over one hook's implementations.

The starting order is pluggy's groups (wrappers outermost, then ``tryfirst``,
plain, ``trylast``), each in registration order, which is Lightning's list
order; ``*_end`` hooks and ``teardown`` may run in reverse registration order
instead (``end_hooks = "reverse"``). Declared constraints then hold whatever
the registration order: a stable topological sort moves an implementation
only as far as a constraint requires, so without constraints nothing moves.
Wrappers and the other implementations are sorted apart (pluggy calls
wrappers around the rest). A cycle is a :class:`~ember.errors.PluginError`
naming every member.

Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ember.errors import PluginError
from ember.markers import ORDER_ATTR, Order, Target


@dataclass
class Node:
    """One implementation of a hook, with what ordering knows of it."""

    name: str
    plugin: object
    impl: Any
    base_reason: str
    before: tuple[Target, ...] = ()
    after: tuple[Target, ...] = ()
    reasons: list[str] = field(default_factory=list)


def declaration(plugin: object, function: Any) -> tuple[tuple[Target, ...], tuple[Target, ...]]:
    """``(before, after)`` declared on the plugin (class or module) and on this hook's function."""
    before: tuple[Target, ...] = ()
    after: tuple[Target, ...] = ()
    for holder in (plugin, getattr(function, "__func__", function)):
        declared = getattr(holder, ORDER_ATTR, None)
        if isinstance(declared, Order):
            before += tuple(t for t in declared.before if t not in before)
            after += tuple(t for t in declared.after if t not in after)
    return before, after


def matches(target: Target, node: Node) -> bool:
    """Whether ``target`` (a plugin name, a class name, or a class) names the plugin of ``node``."""
    if isinstance(target, type):
        return isinstance(node.plugin, target)
    return target in (node.name, node.name.split("#")[0], type(node.plugin).__name__)


def resolve(hook_name: str, nodes: Sequence[Node]) -> list[Node]:
    """``nodes`` (in their starting order) sorted so that every declared constraint holds; raises on a cycle."""
    count = len(nodes)
    edges: list[set[int]] = [set() for _ in range(count)]  # i -> j: i runs before j
    why: dict[tuple[int, int], str] = {}
    for i, node in enumerate(nodes):
        for j, other in enumerate(nodes):
            if i == j:
                continue
            if any(matches(t, other) for t in node.before):
                edges[i].add(j)
                why[(i, j)] = f"before {other.name!r} (declared by {node.name!r})"
            if any(matches(t, other) for t in node.after):
                edges[j].add(i)
                why[(j, i)] = f"after {other.name!r} (declared by {node.name!r})"
    if not why:
        return list(nodes)
    incoming = [0] * count
    for targets in edges:
        for j in targets:
            incoming[j] += 1
    ready = [i for i in range(count) if incoming[i] == 0]
    result: list[int] = []
    while ready:
        ready.sort()
        i = ready.pop(0)
        result.append(i)
        for j in edges[i]:
            incoming[j] -= 1
            if incoming[j] == 0:
                ready.append(j)
    if len(result) < count:
        _raise_cycle(hook_name, nodes, edges, why, set(range(count)) - set(result))
    for (i, j), reason in why.items():
        if reason.startswith("before"):
            nodes[i].reasons.append(reason)
        else:
            nodes[j].reasons.append(reason)
    return [nodes[i] for i in result]


def _raise_cycle(
    hook_name: str, nodes: Sequence[Node], edges: list[set[int]], why: dict[tuple[int, int], str], left: set[int]
) -> None:
    def reaches(start: int, goal: int) -> bool:
        seen, stack = set(), [start]
        while stack:
            for j in edges[stack.pop()]:
                if j == goal:
                    return True
                if j in left and j not in seen:
                    seen.add(j)
                    stack.append(j)
        return False

    members = [i for i in sorted(left) if reaches(i, i)]
    names = ", ".join(repr(nodes[i].name) for i in members)
    constraints = "; ".join(
        f"{nodes[j if r.startswith('after') else i].name!r} runs {r}"
        for (i, j), r in why.items()
        if i in members and j in members
    )
    raise PluginError(
        f"the declared order of hook {hook_name!r} has a cycle among plugins {names}: {constraints}; "
        "remove one of these ember.order(before=/after=) constraints"
    )
