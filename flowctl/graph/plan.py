"""``Pipeline`` → ``Plan``: the DAG of steps, the selected subset, levels and the critical path.

networkx holds the graph (edge ``need → step``). A plan never executes anything. The order of
``Plan.selected`` is stable and puts the critical path first among steps that could start
together: the runner starts ready steps in this order, so two runs of a pipeline behave alike.
Cycles are rejected earlier, with their spans, by ``spec``.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flowctl.errors import UsageError
from flowctl.spec.model import Pipeline
from flowctl.spec.schema import suggest

if TYPE_CHECKING:
    import networkx as nx


@dataclass(frozen=True)
class Plan:
    pipeline: Pipeline
    graph: nx.DiGraph
    selected: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    critical_path: tuple[str, ...]
    priority: Mapping[str, int]
    only: tuple[str, ...] = ()
    from_: tuple[str, ...] = ()
    _index: Mapping[str, int] = field(default_factory=dict, repr=False)

    def needs(self, step: str) -> tuple[str, ...]:
        return self.pipeline.steps[step].needs

    def dependents(self, step: str) -> tuple[str, ...]:
        """Steps that need ``step`` directly, in file order."""
        return tuple(sorted(self.graph.successors(step), key=self._index.__getitem__))

    def downstream(self, step: str) -> frozenset[str]:
        """Every step that needs ``step``, directly or not."""
        import networkx as nx

        return frozenset(nx.descendants(self.graph, step))

    def upstream(self, step: str) -> frozenset[str]:
        import networkx as nx

        return frozenset(nx.ancestors(self.graph, step))


def build_graph(pipeline: Pipeline) -> nx.DiGraph:
    """The DiGraph of every step; edge ``need → step``; node attribute ``index`` is file order."""
    import networkx as nx

    graph = nx.DiGraph(name=pipeline.name)
    for i, sid in enumerate(pipeline.steps):
        graph.add_node(sid, index=i)
    graph.add_edges_from((need, sid) for sid, step in pipeline.steps.items() for need in step.needs)
    return graph


def _check_ids(pipeline: Pipeline, ids: Sequence[str], option: str) -> None:
    for sid in ids:
        if sid not in pipeline.steps:
            guess = suggest(sid, pipeline.steps)
            raise UsageError(f"{option} {sid}: no step {sid!r} in pipeline {pipeline.name!r}",
                             hint=f"did you mean {guess!r}?" if guess else "list the steps with `flowctl plan`")


def compile_plan(pipeline: Pipeline, *, only: Sequence[str] = (), from_: Sequence[str] = ()) -> Plan:
    """Compile the DAG and the selection (``only``: those steps and what they need; ``from_``:
    those steps and everything downstream; both: the intersection).

    Raises UsageError for an unknown step id.
    """
    import networkx as nx

    _check_ids(pipeline, only, "--only")
    _check_ids(pipeline, from_, "--from")
    graph = build_graph(pipeline)
    chosen = set(pipeline.steps)
    if only:
        keep = set(only)
        for sid in only:
            keep |= nx.ancestors(graph, sid)
        chosen &= keep
    if from_:
        keep = set(from_)
        for sid in from_:
            keep |= nx.descendants(graph, sid)
        chosen &= keep
    index = {sid: i for i, sid in enumerate(pipeline.steps)}
    sub = graph.subgraph(chosen) if len(chosen) != len(graph) else graph
    order = list(nx.topological_sort(sub))
    priority: dict[str, int] = {}
    for sid in reversed(order):
        priority[sid] = 1 + max((priority[s] for s in sub.successors(sid)), default=0)
    selected = _stable_order(sub, priority, index)
    levels = tuple(
        tuple(sorted(gen, key=lambda s: (-priority[s], index[s]))) for gen in nx.topological_generations(sub)
    )
    critical: list[str] = []
    if selected:
        node = min((s for s in selected if sub.in_degree(s) == 0), key=lambda s: (-priority[s], index[s]))
        while True:
            critical.append(node)
            nxt = [s for s in sub.successors(node)]
            if not nxt:
                break
            node = min(nxt, key=lambda s: (-priority[s], index[s]))
    return Plan(pipeline, graph, tuple(selected), levels, tuple(critical), priority, tuple(only), tuple(from_), index)


def _stable_order(sub: nx.DiGraph, priority: Mapping[str, int], index: Mapping[str, int]) -> list[str]:
    """Kahn's algorithm taking the longest remaining chain first, then file order."""
    indeg = {sid: sub.in_degree(sid) for sid in sub}
    heap = [(-priority[s], index[s], s) for s, d in indeg.items() if d == 0]
    heapq.heapify(heap)
    out: list[str] = []
    while heap:
        _, _, sid = heapq.heappop(heap)
        out.append(sid)
        for nxt in sub.successors(sid):
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                heapq.heappush(heap, (-priority[nxt], index[nxt], nxt))
    return out


__all__ = ["Plan", "build_graph", "compile_plan"]
