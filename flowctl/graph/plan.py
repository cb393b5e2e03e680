"""``Pipeline`` → ``Plan``: the DAG of steps, the selected subset, levels and the critical path.

The selection, levels, priorities and order are computed from the steps' own adjacency
(linear, and without importing networkx, which costs more than running a small pipeline);
``Plan.graph`` is the networkx DiGraph (edge ``need → step``), built on first use for
rendering and tools. A plan never executes anything. The order of
``Plan.selected`` is stable and puts the critical path first among steps that could start
together: the runner starts ready steps in this order, so two runs of a pipeline behave alike.
Cycles are rejected earlier, with their spans, by ``spec``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from flowctl.errors import UsageError
from flowctl.spec.model import Pipeline
from flowctl.spec.schema import suggest

if TYPE_CHECKING:
    import networkx as nx


@dataclass(frozen=True)
class Plan:
    """What will run: the selected steps, their levels, critical path and start priority."""

    pipeline: Pipeline
    selected: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    critical_path: tuple[str, ...]
    priority: Mapping[str, int]
    only: tuple[str, ...] = ()
    from_: tuple[str, ...] = ()
    _users: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The networkx DiGraph of every step (edge ``need → step``), built on first use.

        Lazy because importing networkx costs more than running a small pipeline: ``run``
        works from the plan's own adjacency; ``plan``, ``graph`` and tools use this.
        """
        return build_graph(self.pipeline)

    def needs(self, step: str) -> tuple[str, ...]:
        return self.pipeline.steps[step].needs

    def dependents(self, step: str) -> tuple[str, ...]:
        """Steps that need ``step`` directly, in file order."""
        return self._users.get(step, ())

    def downstream(self, step: str) -> frozenset[str]:
        """Every step that needs ``step``, directly or not."""
        return frozenset(_reach([step], self._users.__getitem__)) - {step}

    def upstream(self, step: str) -> frozenset[str]:
        """Every step ``step`` needs, directly or not."""
        return frozenset(_reach([step], self.needs)) - {step}


def build_graph(pipeline: Pipeline) -> nx.DiGraph:
    """The DiGraph of every step; edge ``need → step``; node attribute ``index`` is file order."""
    import networkx as nx

    graph = nx.DiGraph(name=pipeline.name)
    for i, sid in enumerate(pipeline.steps):
        graph.add_node(sid, index=i)
    graph.add_edges_from((need, sid) for sid, step in pipeline.steps.items() for need in step.needs)
    return graph


def _reach(start: Sequence[str], nxt: Callable[[str], Sequence[str]]) -> set[str]:
    """``start`` and everything reachable from it through ``nxt``."""
    seen = set(start)
    stack = list(start)
    while stack:
        for other in nxt(stack.pop()):
            if other not in seen:
                seen.add(other)
                stack.append(other)
    return seen


def check_step_ids(pipeline: Pipeline, ids: Sequence[str], option: str) -> None:
    """Raise UsageError (with the closest id) for the first of ``ids`` that is not a step."""
    for sid in ids:
        if sid not in pipeline.steps:
            guess = suggest(sid, pipeline.steps)
            raise UsageError(f"{option} {sid}: no step {sid!r} in pipeline {pipeline.name!r}",
                             hint=f"did you mean {guess!r}?" if guess else "list the steps with `flowctl plan`")


def compile_plan(pipeline: Pipeline, *, only: Sequence[str] = (), from_: Sequence[str] = ()) -> Plan:
    """Compile the DAG and the selection (``only``: those steps and what they need; ``from_``:
    those steps and everything downstream; both: the intersection).

    Linear in steps + needs. Raises UsageError for an unknown step id.
    """
    check_step_ids(pipeline, only, "--only")
    check_step_ids(pipeline, from_, "--from")
    steps = pipeline.steps
    index = {sid: i for i, sid in enumerate(steps)}
    users_lists: dict[str, list[str]] = {sid: [] for sid in steps}
    for sid, step in steps.items():
        for need in step.needs:
            users_lists[need].append(sid)
    users = {sid: tuple(u) for sid, u in users_lists.items()}
    chosen = set(steps)
    if only:
        chosen &= _reach(list(only), lambda s: steps[s].needs)
    if from_:
        chosen &= _reach(list(from_), users.__getitem__)

    # Kahn's algorithm over the chosen steps, once for generations (levels) ...
    indeg = {sid: sum(1 for n in steps[sid].needs if n in chosen) for sid in chosen}
    level = [sid for sid in steps if sid in chosen and indeg[sid] == 0]
    generations: list[list[str]] = []
    remaining = dict(indeg)
    while level:
        generations.append(level)
        following: list[str] = []
        for sid in level:
            for user in users[sid]:
                if user in chosen:
                    remaining[user] -= 1
                    if remaining[user] == 0:
                        following.append(user)
        level = following
    topo = [sid for gen in generations for sid in gen]
    # ... the longest chain from each step to a sink (its priority) ...
    priority: dict[str, int] = {}
    for sid in reversed(topo):
        priority[sid] = 1 + max((priority[u] for u in users[sid] if u in chosen), default=0)

    def rank(s: str) -> tuple[int, int]:
        return (-priority[s], index[s])

    # ... and once more for a stable order: longest remaining chain first, then file order.
    heap = [(*rank(s), s) for s in chosen if indeg[s] == 0]
    heapq.heapify(heap)
    selected: list[str] = []
    while heap:
        sid = heapq.heappop(heap)[2]
        selected.append(sid)
        for user in users[sid]:
            if user in chosen:
                indeg[user] -= 1
                if indeg[user] == 0:
                    heapq.heappush(heap, (*rank(user), user))
    levels = tuple(tuple(sorted(gen, key=rank)) for gen in generations)
    critical: list[str] = []
    if selected:
        node = min((s for s in selected if not any(n in chosen for n in steps[s].needs)), key=rank)
        while True:
            critical.append(node)
            following_steps = [u for u in users[node] if u in chosen]
            if not following_steps:
                break
            node = min(following_steps, key=rank)
    return Plan(pipeline, tuple(selected), levels, tuple(critical), priority, tuple(only), tuple(from_), users)


__all__ = ["Plan", "build_graph", "check_step_ids", "compile_plan"]
