"""``Pipeline`` → ``Plan``: the DAG of steps, the selected subset, levels and the critical path.

The selection, levels, priorities and order are computed from the steps' own adjacency with
the one topological walk of the run path (``graph.walk``: linear, and without importing
networkx, which costs more than running a small pipeline). ``Plan.to_networkx()`` is the
networkx DiGraph (edge ``need → step``) for users' own analysis and the analyses flowctl shows
(cycle paths, diff impact); renderings read ``Plan.edges()``. A plan never executes anything. The order of
``Plan.selected`` is stable and puts the critical path first among steps that could start
together: the runner starts ready steps in this order, so two runs of a pipeline behave alike.
Cycles are rejected earlier, with their spans, by ``spec``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flowctl.errors import UsageError
from flowctl.graph.walk import generations as walk_generations
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

    def to_networkx(self) -> nx.DiGraph:
        """A new networkx DiGraph of every step of the pipeline (edge ``need → step``; node
        attribute ``index`` is the step's place in the file), for your own analysis::

            import networkx as nx
            from flowctl.run.prepare import prepare_run

            graph = prepare_run("pipelines/etl.yaml").plan.to_networkx()
            nx.dag_longest_path(graph)

        networkx is imported on this call only: ``flowctl run`` never needs it.
        """
        return build_graph(self.pipeline)

    def edges(self, *, selected: bool = True) -> Iterator[tuple[str, str]]:
        """Every ``(need, step)`` edge, grouped by the need in file order, then the step in file
        order (networkx's edge order); only those between selected steps unless ``selected``
        is False."""
        chosen = set(self.selected) if selected else None
        for need in self.pipeline.steps:
            if chosen is not None and need not in chosen:
                continue
            for step in self._users.get(need, ()):
                if chosen is None or step in chosen:
                    yield need, step

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


def _depths_in_file_order(pipeline: Pipeline) -> dict[str, int] | None:
    """Each step's generation (the longest chain of needs before it), in one pass over the file;
    None when a step comes before a step it needs."""
    depth: dict[str, int] = {}
    of = depth.__getitem__
    try:
        for sid, step in pipeline.steps.items():
            depth[sid] = 1 + max(map(of, step.needs)) if step.needs else 0
    except KeyError:
        return None
    return depth


def compile_plan(pipeline: Pipeline, *, only: Sequence[str] = (), from_: Sequence[str] = ()) -> Plan:
    """Compile the DAG and the selection (``only``: those steps and what they need; ``from_``:
    those steps and everything downstream; both: the intersection).

    Linear in steps + needs. Raises UsageError for an unknown step id.
    """
    check_step_ids(pipeline, only, "--only")
    check_step_ids(pipeline, from_, "--from")
    steps = pipeline.steps
    users_lists: dict[str, list[str]] = {sid: [] for sid in steps}
    for sid, step in steps.items():
        for need in step.needs:
            users_lists[need].append(sid)
    users = {sid: tuple(u) for sid, u in users_lists.items()}
    if only or from_:
        chosen = set(steps)
        if only:
            chosen &= _reach(list(only), lambda s: steps[s].needs)
        if from_:
            chosen &= _reach(list(from_), users.__getitem__)
        ids = [sid for sid in steps if sid in chosen]  # file order
        indeg = {sid: sum(1 for n in steps[sid].needs if n in chosen) for sid in ids}
        users_in = {sid: tuple(u for u in users[sid] if u in chosen) for sid in ids}
    else:  # everything: no membership test per edge (issue 12: 100k steps, 500k needs)
        ids = list(steps)
        indeg = {sid: len(step.needs) for sid, step in steps.items()}
        users_in = users
    sources = [sid for sid in ids if not indeg[sid]]
    depth = None if only or from_ else _depths_in_file_order(pipeline)
    generations: list[list[str]]
    if depth is not None:  # the usual file, where steps come after what they need: one pass
        generations = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for sid in ids:
            generations[depth[sid]].append(sid)
    else:  # the run path's topological walk over the chosen steps, once for generations (levels) ...
        generations = walk_generations(ids, {}, users_in)
    # ... the longest chain from each step to a sink (its priority) ...
    priority: dict[str, int] = {}
    of = priority.__getitem__
    for gen in reversed(generations):
        for sid in gen:
            after = users_in[sid]
            priority[sid] = 1 + max(map(of, after)) if after else 1
    # ... and the stable order: longest remaining chain first, then file order. A step's
    # priority is above that of every step needing it, so this order is already topological:
    # it is the order in which always starting the ready step of highest priority (then first
    # in the file) starts them, without a heap. One integer per step orders both keys.
    count = len(ids)
    top = max(priority.values(), default=0)
    rank = {sid: (top - priority[sid]) * count + i for i, sid in enumerate(ids)}
    selected = sorted(ids, key=rank.__getitem__)
    levels = tuple(tuple(sorted(gen, key=rank.__getitem__)) for gen in generations)
    critical: list[str] = []
    if selected:
        node = min(sources, key=rank.__getitem__)
        while True:
            critical.append(node)
            following_steps = users_in[node]
            if not following_steps:
                break
            node = min(following_steps, key=rank.__getitem__)
    return Plan(pipeline, tuple(selected), levels, tuple(critical), priority, tuple(only), tuple(from_), users)


__all__ = ["Plan", "build_graph", "check_step_ids", "compile_plan"]
