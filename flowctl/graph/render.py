"""A plan's DAG as text: mermaid (for pull requests), dot (Graphviz), JSON (node-link), a tree.

Renderers take data and return strings; they never print. ``classes`` lets callers (``diff``)
style steps, e.g. ``{"load": "changed"}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from flowctl.graph.plan import Plan

#: mermaid/dot styles for step classes used by ``diff`` and ``plan``.
CLASS_STYLES = {
    "added": ("fill:#e6ffed,stroke:#22863a,color:#22863a", "#e6ffed", "#22863a"),
    "changed": ("fill:#fff5b1,stroke:#b08800,color:#735c0f", "#fff5b1", "#b08800"),
    "removed": ("fill:#ffeef0,stroke:#cb2431,color:#cb2431,stroke-dasharray:4 2", "#ffeef0", "#cb2431"),
    "critical": ("stroke-width:3px", "", ""),
}


def _mermaid_label(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(plan: Plan | None, classes: Mapping[str, str] | None = None, *, steps: list[str] | None = None,
               edges: list[tuple[str, str]] | None = None) -> str:
    """A ``flowchart`` with safe node ids (``s0``…) and the step ids as labels.

    Without a plan (``diff`` draws two versions at once), ``steps`` and ``edges`` say what to draw.
    """
    if plan is None and (steps is None or edges is None):
        raise ValueError("to_mermaid needs a plan, or both steps and edges")
    ids = steps if steps is not None else list(plan.selected)  # type: ignore[union-attr]
    if edges is None:
        chosen = set(ids)
        edges = [(a, b) for a, b in plan.graph.edges if a in chosen and b in chosen]  # type: ignore[union-attr]
    links = edges
    key = {sid: f"s{i}" for i, sid in enumerate(ids)}
    lines = ["flowchart TD"]
    lines += [f'    {key[sid]}["{_mermaid_label(sid)}"]' for sid in ids]
    lines += [f"    {key[a]} --> {key[b]}" for a, b in links if a in key and b in key]
    classes = dict(classes or {})
    used = sorted(set(classes.values()) & set(CLASS_STYLES))
    for name in used:
        lines.append(f"    classDef {name} {CLASS_STYLES[name][0]}")
        members = [key[s] for s in ids if classes.get(s) == name]
        if members:
            lines.append(f"    class {','.join(members)} {name}")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(plan: Plan, classes: Mapping[str, str] | None = None) -> str:
    """A Graphviz digraph; the critical path is drawn bold."""
    classes = classes or {}
    chosen = set(plan.selected)
    critical = set(zip(plan.critical_path, plan.critical_path[1:], strict=False))
    lines = [f"digraph {_dot_quote(plan.pipeline.name)} {{", "  rankdir=LR;", '  node [shape=box, style="rounded"];']
    for sid in plan.selected:
        attrs = [f"label={_dot_quote(sid)}"]
        style = CLASS_STYLES.get(classes.get(sid, ""))
        if style and style[1]:
            attrs += ['style="rounded,filled"', f'fillcolor="{style[1]}"', f'color="{style[2]}"']
        if sid in plan.critical_path:
            attrs.append("penwidth=2")
        lines.append(f"  {_dot_quote(sid)} [{', '.join(attrs)}];")
    for a, b in plan.graph.edges:
        if a in chosen and b in chosen:
            extra = " [penwidth=2]" if (a, b) in critical else ""
            lines.append(f"  {_dot_quote(a)} -> {_dot_quote(b)}{extra};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json(plan: Plan) -> str:
    """Node-link JSON (networkx's format) plus levels and the critical path."""
    chosen = set(plan.selected)
    data = {
        "directed": True,
        "multigraph": False,
        "graph": {"name": plan.pipeline.name},
        "pipeline": plan.pipeline.name,
        "nodes": [
            {"id": sid, "needs": list(plan.pipeline.steps[sid].needs), "level": level}
            for level, group in enumerate(plan.levels) for sid in group
        ],
        "links": [{"source": a, "target": b} for a, b in plan.graph.edges if a in chosen and b in chosen],
        "levels": [list(group) for group in plan.levels],
        "critical_path": list(plan.critical_path),
        "order": list(plan.selected),
    }
    return json.dumps(data, indent=2) + "\n"


def to_text(plan: Plan) -> str:
    """An indented tree: each root, then what needs it; a step reached again is marked."""
    chosen = set(plan.selected)
    shown: set[str] = set()
    lines: list[str] = []

    # An explicit stack rather than recursion: a chain of 10,000 steps must not overflow.
    stack: list[tuple[str, int]] = []
    for sid in reversed(plan.selected):
        if not any(n in chosen for n in plan.needs(sid)):
            stack.append((sid, 0))
    while stack:
        sid, depth = stack.pop()
        if sid in shown:
            lines.append("  " * depth + f"{sid} (see above)")
            continue
        shown.add(sid)
        mark = " *" if sid in plan.critical_path else ""
        lines.append("  " * depth + sid + mark)
        children = [c for c in plan.dependents(sid) if c in chosen]
        stack.extend((child, depth + 1) for child in reversed(children))
    if plan.critical_path:
        lines.append("")
        lines.append("* critical path: " + " → ".join(plan.critical_path))
    return "\n".join(lines) + "\n"


__all__ = ["CLASS_STYLES", "to_dot", "to_json", "to_mermaid", "to_text"]
