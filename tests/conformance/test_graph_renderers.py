"""Graphviz renders ``flowctl graph --format dot`` and mermaid parses ``--format mermaid``.

Run over the example pipelines and over corpus pipelines with awkward step ids (leading digits,
dashes, ids that are keywords in dot or mermaid such as ``graph``, ``end``, ``subgraph``, and the
one-letter ``o``/``x`` that mermaid reads as edge markers).
"""

from __future__ import annotations

import html
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.conformance

REPO = Path(__file__).resolve().parents[2]
CORPUS_VALID = REPO / "tests" / "corpus" / "valid"
AWKWARD = ["awkward_ids.yaml", "yaml11_keys.yaml", "fan_out.yaml"]


def graph_inputs() -> list[Path]:
    return sorted((REPO / "pipelines").glob("*.y*ml")) + [CORPUS_VALID / name for name in AWKWARD]


def step_ids(path: Path) -> list[str]:
    return [str(k) for k in yaml.load(path.read_bytes(), Loader=yaml.BaseLoader)["steps"]]


def test_there_are_examples_to_render() -> None:
    assert len(list((REPO / "pipelines").glob("*.y*ml"))) >= 3


@pytest.mark.parametrize("path", graph_inputs(), ids=lambda p: p.stem)
def test_dot_output_renders_with_graphviz(
    path: Path, require_tool: Callable[[str], str], flowctl: Callable[..., Any]
) -> None:
    dot = require_tool("dot")
    proc = flowctl("graph", str(path), "--format", "dot")
    assert proc.returncode == 0, proc.stderr
    render = subprocess.run(
        [dot, "-Tsvg"], input=proc.stdout, capture_output=True, check=False, text=True, timeout=60
    )
    assert render.returncode == 0, f"dot rejected:\n{proc.stdout}\n{render.stderr}"
    assert "warning" not in render.stderr.lower(), render.stderr
    # Every step is a node of the rendered graph, under its own id.
    titles = {html.unescape(t) for t in re.findall(r"<title>([^<]*)</title>", render.stdout)}
    texts = {html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", render.stdout)}
    for sid in step_ids(path):
        assert sid in titles or sid in texts, f"step {sid!r} missing from the SVG"


@pytest.mark.parametrize("path", graph_inputs(), ids=lambda p: p.stem)
def test_mermaid_output_parses(
    path: Path, mermaid_parse: Callable[..., list[dict[str, Any]]], flowctl: Callable[..., Any]
) -> None:
    proc = flowctl("graph", str(path), "--format", "mermaid")
    assert proc.returncode == 0, proc.stderr
    [record] = mermaid_parse(proc.stdout)
    assert record["ok"], f"mermaid rejected:\n{proc.stdout}\n{record['error']}"
    assert record["type"].startswith("flowchart")
    for sid in step_ids(path):
        assert sid in proc.stdout, f"step {sid!r} missing from the mermaid text"


def test_the_mermaid_harness_rejects_bad_diagrams(mermaid_parse: Callable[..., list[dict[str, Any]]]) -> None:
    """Guard the guard: mermaid's own edge-marker pitfall is caught (`x-->y` is not a node x)."""
    records = mermaid_parse(
        "```mermaid\nflowchart TD\n  x-->y\n```\n\n```mermaid\nflowchart TD\n  a --> b\n```\n"
    )
    assert [r["ok"] for r in records] == [False, True]


@pytest.mark.parametrize("path", graph_inputs(), ids=lambda p: p.stem)
def test_json_output_is_node_link_networkx_reads(path: Path, flowctl: Callable[..., Any]) -> None:
    """`--format json` is node-link data: networkx (a real reader) rebuilds the same DAG."""
    import json

    import networkx as nx
    from networkx.readwrite import json_graph

    proc = flowctl("graph", str(path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    graph = json_graph.node_link_graph(json.loads(proc.stdout), edges="links")
    assert graph.is_directed() and nx.is_directed_acyclic_graph(graph)
    steps = yaml.load(path.read_bytes(), Loader=yaml.BaseLoader)["steps"]
    assert set(graph.nodes) == set(steps)
    expected = set()
    for sid, step in steps.items():
        needs = step.get("needs", []) if isinstance(step, dict) else []
        expected |= {(need, sid) for need in ([needs] if isinstance(needs, str) else needs)}
    assert set(graph.edges()) == expected


def test_json_output_declares_a_simple_graph(flowctl: Callable[..., Any]) -> None:
    import json

    from networkx.readwrite import json_graph

    proc = flowctl("graph", str(CORPUS_VALID / "fan_out.yaml"), "--format", "json")
    data = json.loads(proc.stdout)
    assert data.get("multigraph") is False
    assert not json_graph.node_link_graph(data, edges="links").is_multigraph()


def test_diff_markdown_mermaid_block_parses(
    mermaid_parse: Callable[..., list[dict[str, Any]]], flowctl: Callable[..., Any], tmp_path: Path
) -> None:
    """The pull-request comment's graph (added/changed/removed steps styled) is valid mermaid,
    also with step ids mermaid treats specially (`end`, `x`, `o`, `graph`)."""
    from tests.diff.gitrepo import ETL_V1, GitRepo

    repo = GitRepo(tmp_path / "project")
    repo.write("pipelines/etl.yaml", ETL_V1)
    repo.commit("etl 1.0.0")
    repo.tag("etl/v1.0.0", "etl 1.0.0")
    changed = (
        ETL_V1.replace("python scripts/transform.py", "python scripts/transform.py --fast")
        .replace("  report:\n    needs: [load]\n    run: python scripts/report.py\n", "")
        .replace("    timeout: 5m\n", "    timeout: 5m\n  end:\n    needs: [load]\n    run: echo end\n")
        + "  x:\n    needs: [end]\n    run: echo x\n  o:\n    needs: [x]\n    run: echo o\n"
        + "  graph:\n    needs: [o, extract]\n    run: echo graph\n"
    )
    repo.write("pipelines/etl.yaml", changed)

    proc = flowctl("diff", "pipelines/etl.yaml", "--format", "markdown", cwd=repo.path)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "```mermaid" in proc.stdout
    records = mermaid_parse(proc.stdout)
    assert records and all(r["ok"] for r in records), f"{proc.stdout}\n{records}"
    for sid in ("end", "x", "o", "graph", "transform", "report"):
        assert sid in proc.stdout
