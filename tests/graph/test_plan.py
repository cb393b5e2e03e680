"""Plans: selection, levels, stable critical-path-first order, renderings."""

from __future__ import annotations

import itertools
import json
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowctl.errors import UsageError
from flowctl.graph import compile_plan
from flowctl.graph.render import to_dot, to_json, to_mermaid, to_text
from flowctl.spec import load_pipeline

TEXT = textwrap.dedent(
    """
    version: 1
    name: p
    steps:
      lint: {run: x}
      extract: {run: x}
      transform: {run: x, needs: [extract]}
      load: {run: x, needs: [transform]}
      notify: {run: x, needs: [extract]}
      report: {run: x, needs: [load, notify, lint]}
    """
)


@pytest.fixture
def pipe():  # type: ignore[no-untyped-def]
    return load_pipeline("p.yaml", text=TEXT.encode())


def test_levels_and_critical_path(pipe) -> None:  # type: ignore[no-untyped-def]
    plan = compile_plan(pipe)
    assert plan.levels == (("extract", "lint"), ("transform", "notify"), ("load",), ("report",))
    assert plan.critical_path == ("extract", "transform", "load", "report")
    # critical path first among steps that could start together, then file order
    assert plan.selected == ("extract", "transform", "lint", "load", "notify", "report")
    assert plan.priority["extract"] == 4 and plan.priority["lint"] == 2


def test_only_and_from(pipe) -> None:  # type: ignore[no-untyped-def]
    assert set(compile_plan(pipe, only=["load"]).selected) == {"extract", "transform", "load"}
    assert set(compile_plan(pipe, from_=["transform"]).selected) == {"transform", "load", "report"}
    assert compile_plan(pipe, only=["load"], from_=["transform"]).selected == ("transform", "load")


def test_unknown_step_suggests(pipe) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError) as info:
        compile_plan(pipe, only=["lod"])
    assert info.value.hint == "did you mean 'load'?"


def test_queries(pipe) -> None:  # type: ignore[no-untyped-def]
    plan = compile_plan(pipe)
    assert plan.dependents("extract") == ("transform", "notify")
    assert plan.downstream("transform") == {"load", "report"}
    assert plan.upstream("report") == {"lint", "extract", "transform", "load", "notify"}


def test_renderings(pipe) -> None:  # type: ignore[no-untyped-def]
    plan = compile_plan(pipe)
    mermaid = to_mermaid(plan, {"load": "changed"})
    assert mermaid.startswith("flowchart TD\n") and "classDef changed" in mermaid
    assert mermaid.count("-->") == 6
    dot = to_dot(plan)
    assert dot.count("->") == 6 and '"extract" -> "transform" [penwidth=2];' in dot
    data = json.loads(to_json(plan))
    assert len(data["links"]) == 6 and data["critical_path"][0] == "extract"
    text = to_text(plan)
    assert "report (see above)" in text and text.splitlines()[0] == "extract *"


def test_long_chain_renders_without_recursion_error() -> None:
    steps = "\n".join(f"  s{i}: {{run: x{', needs: [s' + str(i - 1) + ']' if i else ''}}}" for i in range(3000))
    pipe = load_pipeline("p.yaml", text=f"version: 1\nname: p\nsteps:\n{steps}\n".encode())
    plan = compile_plan(pipe)
    assert len(plan.critical_path) == 3000
    assert to_text(plan).count("\n") > 3000


@st.composite
def _dags(draw: st.DrawFn) -> tuple[str, list[str], list[str]]:
    """A pipeline text (a random DAG written in a random file order) and an --only / --from."""
    n = draw(st.integers(min_value=1, max_value=25))
    ids = [f"s{i}" for i in range(n)]
    needs = {ids[i]: sorted(draw(st.sets(st.sampled_from(ids[:i]), max_size=3))) if i else [] for i in range(n)}
    order = draw(st.permutations(ids))
    lines = [f"  {sid}: {{run: x" + (f", needs: [{', '.join(needs[sid])}]" if needs[sid] else "") + "}" for sid in order]
    only = draw(st.lists(st.sampled_from(ids), max_size=2))
    from_ = draw(st.lists(st.sampled_from(ids), max_size=2))
    return "version: 1\nname: p\nsteps:\n" + "\n".join(lines) + "\n", only, from_


@settings(max_examples=60, deadline=None)
@given(_dags())
def test_compile_plan_agrees_with_networkx_on_random_dags(case: tuple[str, list[str], list[str]]) -> None:
    import networkx as nx

    text, only, from_ = case
    pipe = load_pipeline("p.yaml", text=text.encode())
    plan = compile_plan(pipe, only=only, from_=from_)
    graph = nx.DiGraph()
    graph.add_nodes_from(pipe.steps)
    graph.add_edges_from((n, s) for s, step in pipe.steps.items() for n in step.needs)
    chosen = set(pipe.steps)
    if only:
        chosen &= set(only).union(*(nx.ancestors(graph, s) for s in only))
    if from_:
        chosen &= set(from_).union(*(nx.descendants(graph, s) for s in from_))
    sub = graph.subgraph(chosen)
    assert set(plan.selected) == chosen and len(plan.selected) == len(chosen)
    if not chosen:  # --only and --from that do not meet
        assert plan.levels == () and plan.critical_path == ()
        return
    position = {s: i for i, s in enumerate(plan.selected)}
    assert all(position[a] < position[b] for a, b in sub.edges)  # a topological order
    depth: dict[str, int] = {}
    for s in nx.topological_sort(sub):
        depth[s] = max((depth[p] + 1 for p in sub.predecessors(s)), default=0)
    assert [set(level) for level in plan.levels] == [
        {s for s in chosen if depth[s] == d} for d in range(len(plan.levels))
    ]
    height: dict[str, int] = {}
    for s in reversed(list(nx.topological_sort(sub))):
        height[s] = 1 + max((height[u] for u in sub.successors(s)), default=0)
    assert dict(plan.priority) == height
    path = plan.critical_path
    assert len(path) == max(height.values()) and sub.in_degree(path[0]) == 0
    assert all(sub.has_edge(a, b) for a, b in itertools.pairwise(path))
    # the order: each step is, among those whose needs came before it, the one with the
    # longest chain ahead of it, then the first in the file
    index = {s: i for i, s in enumerate(pipe.steps)}
    done: set[str] = set()
    for s in plan.selected:
        ready = [r for r in chosen - done if set(sub.predecessors(r)) <= done]
        assert s == min(ready, key=lambda r: (-height[r], index[r]))
        done.add(s)
