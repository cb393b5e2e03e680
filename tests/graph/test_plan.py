"""Plans: selection, levels, stable critical-path-first order, renderings."""

from __future__ import annotations

import json
import textwrap

import pytest

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
