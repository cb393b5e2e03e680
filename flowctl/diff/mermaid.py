"""A mermaid flowchart of a ``PipelineDiff``: the new graph plus what was removed.

Added, changed, renamed and removed steps get their own class (colours a reviewer can tell
apart, removed ones dashed); removed dependencies are dotted arrows. Node ids are generated
(``s0``, ``s1``, ...) so step ids that are mermaid keywords (``end``) or contain odd
characters stay safe; labels carry the real ids. Returns text, prints nothing.
"""

from __future__ import annotations

from flowctl.diff.changes import ChangeKind, PipelineDiff

CLASS_DEFS = (
    "classDef added fill:#dafbe1,stroke:#1a7f37,color:#0f5323",
    "classDef changed fill:#fff8c5,stroke:#9a6700,color:#4d2d00",
    "classDef renamed fill:#ddf4ff,stroke:#0969da,color:#0a3069",
    "classDef removed fill:#ffebe9,stroke:#cf222e,color:#82071e,stroke-dasharray:5 5",
)


def _label(text: str) -> str:
    return '"' + text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;") + '"'


def mermaid_graph(diff: PipelineDiff) -> str:
    """``flowchart LR`` text for ``diff``."""
    kinds = {c.step: c for c in diff.steps}
    removed_edges = {(e.need, e.step) for e in diff.edges if e.kind is ChangeKind.REMOVED}
    nodes: dict[str, str] = {}
    lines = ["flowchart LR"]

    def node(step: str, label: str) -> str:
        if step not in nodes:
            nodes[step] = f"s{len(nodes)}"
            lines.append(f"  {nodes[step]}[{_label(label)}]")
        return nodes[step]

    graph = diff.new_graph if diff.kind is not ChangeKind.REMOVED else diff.old_graph
    for sid, _ in graph:
        change = kinds.get(sid)
        if change is not None and change.kind is ChangeKind.RENAMED:
            node(sid, f"{sid} (was {change.old_id})")
        else:
            node(sid, sid)
    if diff.kind is not ChangeKind.REMOVED:
        for change in diff.steps:
            if change.kind is ChangeKind.REMOVED:
                node(change.step, change.step)
    edges = []
    for sid, needs in graph:
        for need in needs:
            edges.append(f"  {nodes[need]} --> {nodes[sid]}" if need in nodes else "")
    for need, sid in sorted(removed_edges):
        if diff.kind is ChangeKind.CHANGED and need in nodes and sid in nodes:
            edges.append(f"  {nodes[need]} -.->|removed| {nodes[sid]}")
    lines += [e for e in edges if e]
    lines += [f"  {c}" for c in CLASS_DEFS]
    for kind in (ChangeKind.ADDED, ChangeKind.CHANGED, ChangeKind.RENAMED, ChangeKind.REMOVED):
        members = [nodes[c.step] for c in diff.steps if c.kind is kind and c.step in nodes]
        if members:
            lines.append(f"  class {','.join(members)} {kind.value}")
    return "\n".join(lines) + "\n"


__all__ = ["CLASS_DEFS", "mermaid_graph"]
