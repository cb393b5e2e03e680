"""Render a ``DiffReport``: terminal text, a pull-request comment (markdown), JSON, changelog.

Renderers take data and return strings; they never print or read files. The markdown comment
has a summary line, a table of changes per pipeline and a mermaid graph (drawn by
``graph.render.to_mermaid``) with added, changed and removed steps styled differently. ``changelog`` is the summary
written into a release tag's message; ``one_line`` is what ``flowctl versions`` shows.
"""

from __future__ import annotations

import dataclasses
import enum
import html
import json
from collections.abc import Callable, Iterable

from flowctl.diff.changes import (
    ChangeClass,
    ChangeKind,
    DiffReport,
    FieldChange,
    PipelineDiff,
    SettingChange,
    StepChange,
    Value,
)

_DURATIONS = frozenset({"timeout", "retry_delay", "retry_max_delay", "remediate.timeout"})


def format_duration(seconds: float) -> str:
    """``90`` → ``1m30s``; ``0.25`` → ``250ms``."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    rest, parts = float(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            count = int(rest // size)
            parts.append(f"{count}{unit}")
            rest -= count * size
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return "".join(parts)


def format_value(name: str, value: Value) -> str:
    """A field value as a person reads it (durations, argv lists, unset)."""
    if value is None:
        return "(none)"
    base = name.removeprefix("defaults.")
    if base in _DURATIONS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_duration(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(json.dumps(v) if isinstance(v, str) and (" " in v or not v) else str(v) for v in value) + "]"
    if isinstance(value, dict):
        shown = {k: v for k, v in value.items() if v not in (None, [], "")}
        return ", ".join(f"{k}: {format_value(k, v)}" for k, v in shown.items()) or "(empty)"
    return str(value)


def describe_field(
    change: FieldChange | SettingChange,
    *,
    code: Callable[[str], str] = str,
    secret: str = "changed (secret, value not shown)",
    inherited: str = " (inherited)",
) -> str:
    """``timeout: 5m → 10m``; secret entries say only that they changed. ``code`` wraps names
    and values (markdown uses ``<code>``)."""
    name = code(change.field)
    if change.secret:
        text = f"{name}: {secret}"
    elif change.old is None:
        text = f"{name}: set to {code(format_value(change.field, change.new))}"
    elif change.new is None:
        text = f"{name}: removed (was {code(format_value(change.field, change.old))})"
    else:
        old, new = format_value(change.field, change.old), format_value(change.field, change.new)
        text = f"{name}: {code(old)} → {code(new)}"
    if isinstance(change, FieldChange) and change.inherited:
        text += inherited
    return text


def impact_rows(diff: PipelineDiff) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(title, what it means, steps) for each part of the impact, in the order shown."""
    impact = diff.impact
    return (
        ("re-run", "recorded results invalidated", impact.rerun),
        ("policy only", "execution policy changed, results stay valid", impact.policy_only),
        ("new", "no recorded result yet", impact.new),
    )


def own_and_inherited(change: StepChange) -> tuple[tuple[FieldChange, ...], tuple[str, ...]]:
    """The step's own field changes, and the names of those it only inherits from the pipeline
    (defaults, pipeline env): those are listed once under the pipeline's settings."""
    own = tuple(f for f in change.fields if not f.inherited)
    inherited = tuple(f.field for f in change.fields if f.inherited)
    return own, inherited


# -- counting ------------------------------------------------------------------------------


def _count(diff: PipelineDiff, kind: ChangeKind) -> int:
    return sum(1 for s in diff.steps if s.kind is kind)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def step_counts(diffs: Iterable[PipelineDiff]) -> str:
    """``2 steps changed, 1 added, 1 removed, 1 renamed`` (only non-zero parts)."""
    diffs = [d for d in diffs if d.kind in (ChangeKind.CHANGED, ChangeKind.UNCHANGED)]
    counts = [(k, sum(_count(d, k) for d in diffs)) for k in (ChangeKind.CHANGED, ChangeKind.ADDED, ChangeKind.REMOVED, ChangeKind.RENAMED)]
    parts = [(n, k.value) for k, n in counts if n]
    if not parts:
        return ""
    first = f"{_plural(parts[0][0], 'step')} {parts[0][1]}"
    return ", ".join([first] + [f"{n} {word}" for n, word in parts[1:]])


#: How each class reads beside a change (text and changelog; markdown wraps it in <i>).
CLASS_LABEL = {
    ChangeClass.INVALIDATING: "invalidates results",
    ChangeClass.IDENTITY: "new identity: results not found",
    ChangeClass.POLICY: "policy: no re-run",
    ChangeClass.DOCUMENTATION: "docs only",
}


def impact_words(rerun: int, policy_only: int) -> str:
    """``3 steps re-run (recorded results invalidated), 1 step changes execution policy only
    (no re-run)``; the policy part only when there is one."""
    words = f"{_plural(rerun, 'step')} re-run" if rerun else "no step re-runs"
    words += " (recorded results invalidated)" if rerun else ""
    if policy_only:
        verb = "changes" if policy_only == 1 else "change"
        words += f", {_plural(policy_only, 'step')} {verb} execution policy only (no re-run)"
    return words


def impact_line(diff: PipelineDiff) -> str:
    """``3 steps changed, 1 added; 3 steps re-run (recorded results invalidated).``"""
    steps = step_counts([diff])
    tail = impact_words(len(diff.impact.rerun), len(diff.impact.policy_only)) + "."
    return f"{steps}; {tail}" if steps else tail[0].upper() + tail[1:]


def summary_line(report: DiffReport) -> str:
    """One line for the top of a PR comment or the end of terminal output."""
    changed = [d for d in report.pipelines if d.changed]
    if not changed:
        return f"No pipeline changes ({_plural(len(report.pipelines), 'pipeline')} compared)."
    whole = [
        f"{sum(1 for d in changed if d.kind is k)} {k.value}"
        for k in (ChangeKind.ADDED, ChangeKind.REMOVED)
        if any(d.kind is k for d in changed)
    ]
    head = _plural(len(changed), "pipeline") + " changed" + (f" ({', '.join(whole)})" if whole else "")
    steps = step_counts(changed)
    head += f"; {steps}" if steps else ""
    rerun = sum(len(d.impact.rerun) for d in changed)
    policy_only = sum(len(d.impact.policy_only) for d in changed)
    return f"{head}; {impact_words(rerun, policy_only)}."


def one_line(diff: PipelineDiff) -> str:
    """What changed in one pipeline, in one line (``flowctl versions``)."""
    if diff.kind is ChangeKind.ADDED:
        return f"new pipeline ({_plural(len(diff.steps), 'step')})"
    if diff.kind is ChangeKind.REMOVED:
        return f"pipeline removed (it had {_plural(len(diff.steps), 'step')})"
    if not diff.changed:
        return "no changes"
    parts = []
    for kind in (ChangeKind.CHANGED, ChangeKind.ADDED, ChangeKind.REMOVED, ChangeKind.RENAMED):
        ids = [s.step if kind is not ChangeKind.RENAMED else f"{s.old_id}→{s.step}" for s in diff.steps_of(kind)]
        if ids:
            parts.append(f"{kind.value} " + ", ".join(ids))
    if diff.settings:
        parts.append("settings " + ", ".join(dict.fromkeys(s.field for s in diff.settings)))
    if diff.edges and not parts:
        parts.append(_plural(len(diff.edges), "dependency") + " changed")
    return "; ".join(parts)


# -- text ----------------------------------------------------------------------------------

_MARK = {ChangeKind.ADDED: "+", ChangeKind.REMOVED: "-", ChangeKind.CHANGED: "~", ChangeKind.RENAMED: ">"}
_ANSI = {ChangeKind.ADDED: "32", ChangeKind.REMOVED: "31", ChangeKind.CHANGED: "33", ChangeKind.RENAMED: "36"}


def _sides(diff: PipelineDiff) -> str:
    return f"{diff.old.label} → {diff.new.label}"


def _step_title(change: StepChange) -> str:
    if change.kind is ChangeKind.RENAMED:
        return f"step {change.step} (renamed from {change.old_id})  [{CLASS_LABEL[ChangeClass.IDENTITY]}]"
    return f"step {change.step}" + (" (added)" if change.kind is ChangeKind.ADDED else " (removed)" if change.kind is ChangeKind.REMOVED else "")


def render_text(report: DiffReport, *, color: bool = False) -> str:
    """Terminal output: one block per changed pipeline, then the summary line."""

    def paint(kind: ChangeKind, text: str) -> str:
        return f"\x1b[{_ANSI[kind]}m{text}\x1b[0m" if color else text

    lines: list[str] = []
    for diff in report.pipelines:
        if not diff.changed:
            continue
        path = diff.new.path or diff.old.path
        head = f"pipeline {diff.name} ({path}): {_sides(diff)}"
        if diff.kind in (ChangeKind.ADDED, ChangeKind.REMOVED):
            lines.append(paint(diff.kind, f"{_MARK[diff.kind]} {head}: {one_line(diff)}"))
            continue
        lines.append(head)
        for change in diff.steps:
            lines.append("  " + paint(change.kind, f"{_MARK[change.kind]} {_step_title(change)}"))
            own, inherited = own_and_inherited(change)
            lines.extend(f"      {describe_field(f)}  [{CLASS_LABEL[f.change_class]}]" for f in own)
            if inherited:
                lines.append(f"      inherits changed {', '.join(inherited)}")
        for edge in diff.edges:
            lines.append("  " + paint(edge.kind, f"{_MARK[edge.kind]} dependency {edge.need} → {edge.step}"))
        if diff.settings:
            lines.append("  settings:")
            for s in diff.settings:
                affects = f" (affects {', '.join(s.affects)})" if s.affects else ""
                lines.append(f"      {describe_field(s)}{affects}  [{CLASS_LABEL[s.change_class]}]")
        for title, meaning, ids in impact_rows(diff):
            lines.append(f"  {title} ({meaning}): " + (", ".join(ids) or "(none)"))
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


# -- markdown ------------------------------------------------------------------------------

_ICON = {ChangeKind.ADDED: "➕", ChangeKind.REMOVED: "➖", ChangeKind.CHANGED: "✏️", ChangeKind.RENAMED: "🔀"}
_MAX_CELL = 160


def _code(text: str) -> str:
    if len(text) > _MAX_CELL:
        text = text[: _MAX_CELL - 1] + "…"
    return "<code>" + html.escape(text).replace("|", "&#124;").replace("\n", " ") + "</code>"


def _cell(text: str) -> str:
    return html.escape(text).replace("|", "&#124;").replace("\n", "<br>")


def _md_field(change: FieldChange | SettingChange) -> str:
    text = describe_field(change, code=_code, secret="changed (secret)", inherited=" <i>(inherited)</i>")
    return f"{text} <i>({CLASS_LABEL[change.change_class]})</i>"


def _effect(diff: PipelineDiff, step: str) -> str:
    """The step's row in the Effect column."""
    impact = diff.impact
    if step in impact.rerun:
        return "re-run"
    if step in impact.policy_only:
        return "policy only"
    return "new" if step in impact.new else ""


def _md_step(diff: PipelineDiff, change: StepChange) -> str:
    if change.kind is ChangeKind.ADDED:
        detail = "added"
    elif change.kind is ChangeKind.REMOVED:
        detail = "removed"
    elif change.kind is ChangeKind.RENAMED:
        detail = f"renamed from {_code(change.old_id or '')} <i>({CLASS_LABEL[ChangeClass.IDENTITY]})</i>"
    else:
        detail = ""
    own, inherited = own_and_inherited(change)
    fields = "<br>".join(_md_field(f) for f in own)
    if inherited:
        fields += ("<br>" if fields else "") + "inherits changed " + ", ".join(_code(i) for i in inherited)
    both = "<br>".join(x for x in (detail, fields) if x)
    effect = _effect(diff, change.step) if change.kind is not ChangeKind.REMOVED else ""
    return f"| {_ICON[change.kind]} | {_code(change.step)} | {both} | {effect} |"


def _ids(ids: Iterable[str]) -> str:
    shown = [f"`{i}`" for i in ids]
    return ", ".join(shown) if shown else "none"


def _md_pipeline(diff: PipelineDiff) -> list[str]:
    path = diff.new.path or diff.old.path or ""
    out = [f"### {_ICON.get(diff.kind, '')} `{diff.name}` ({_cell(path)}): {_cell(diff.old.label)} → {_cell(diff.new.label)}", ""]
    if diff.kind in (ChangeKind.ADDED, ChangeKind.REMOVED):
        text = one_line(diff)
        out += [f"{_cell(text[0].upper() + text[1:])}.", ""]
    else:
        rows = [_md_step(diff, c) for c in diff.steps]
        rows += [
            f"| {_ICON[e.kind]} | {_code(e.need + ' → ' + e.step)} | dependency {e.kind.value} | |" for e in diff.edges
        ]
        for s in diff.settings:
            affects = f"<br>affects {', '.join(_code(a) for a in s.affects)}" if s.affects else ""
            rows.append(f"| ⚙️ | pipeline | {_md_field(s)}{affects} | |")
        if rows:
            out += ["| | Step | Change | Effect |", "|---|---|---|---|", *rows, ""]
        impact = [f"**{title[0].upper() + title[1:]}** ({meaning}): {_ids(ids)}" for title, meaning, ids in impact_rows(diff)]
        out += [line + "  " for line in impact[:-1]] + [impact[-1], ""]  # two spaces: a line break
    out += ["```mermaid", mermaid_graph(diff).rstrip("\n"), "```", ""]
    return out


_CLASS = {ChangeKind.ADDED: "added", ChangeKind.REMOVED: "removed", ChangeKind.CHANGED: "changed", ChangeKind.RENAMED: "changed"}


def mermaid_graph(diff: PipelineDiff) -> str:
    """The new graph (the old one for a removed pipeline) plus removed steps, styled by change."""
    from flowctl.graph.render import to_mermaid

    graph = diff.old_graph if diff.kind is ChangeKind.REMOVED else diff.new_graph
    steps = [sid for sid, _ in graph]
    steps += [c.step for c in diff.steps if c.kind is ChangeKind.REMOVED and c.step not in steps]
    edges = [(need, sid) for sid, needs in graph for need in needs]
    classes = {c.step: _CLASS[c.kind] for c in diff.steps if c.kind in _CLASS}
    # Steps and edges are given explicitly, so to_mermaid needs no Plan (the diff has none).
    return to_mermaid(None, classes, steps=steps, edges=edges)


def render_markdown(report: DiffReport) -> str:
    """A pull-request comment: summary line, a table per changed pipeline, mermaid graphs."""
    out = ["## flowctl diff", "", f"**{summary_line(report)}**", ""]
    for diff in report.pipelines:
        if diff.changed:
            out += _md_pipeline(diff)
    unchanged = [d.name for d in report.pipelines if not d.changed]
    if unchanged:
        out += [f"Unchanged: {_ids(unchanged)}", ""]
    return "\n".join(out).rstrip("\n") + "\n"


# -- json and changelog ----------------------------------------------------------------------


def _plain(obj: object) -> object:
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def to_dict(report: DiffReport) -> dict[str, object]:
    pipelines = []
    for diff in report.pipelines:
        item = _plain(dataclasses.asdict(diff))
        assert isinstance(item, dict)
        item.pop("old_graph", None)
        item.pop("new_graph", None)
        pipelines.append(item)
    return {"changed": report.changed, "summary": summary_line(report), "pipelines": pipelines}


def render_json(report: DiffReport) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"


def changelog(diff: PipelineDiff, title: str) -> str:
    """A release tag's message: ``title``, then Added/Changed/Removed sections and the impact."""
    lines = [title, "", one_line(diff) if diff.kind is not ChangeKind.CHANGED else impact_line(diff)]
    sections: dict[str, list[str]] = {"Added": [], "Changed": [], "Removed": []}
    for change in diff.steps:
        if change.kind is ChangeKind.ADDED:
            sections["Added"].append(f"- step {change.step}")
        elif change.kind is ChangeKind.REMOVED:
            sections["Removed"].append(f"- step {change.step}")
        else:
            what = f"- step {change.step}" + (f" (renamed from {change.old_id})" if change.old_id else "")
            own, inherited = own_and_inherited(change)
            parts = [f"{describe_field(f)} ({CLASS_LABEL[f.change_class]})" for f in own]
            parts += [f"inherits changed {', '.join(inherited)}"] if inherited else []
            fields = "; ".join(parts)
            sections["Changed"].append(what + (f": {fields}" if fields else ""))
    for edge in diff.edges:
        key = "Added" if edge.kind is ChangeKind.ADDED else "Removed"
        sections[key].append(f"- dependency {edge.need} → {edge.step}")
    for s in diff.settings:
        sections["Changed"].append(f"- {describe_field(s)} ({CLASS_LABEL[s.change_class]})")
    for name, items in sections.items():
        if items:
            lines += ["", name, *items]
    return "\n".join(lines) + "\n"


__all__ = [
    "CLASS_LABEL",
    "changelog",
    "describe_field",
    "format_duration",
    "format_value",
    "impact_line",
    "impact_rows",
    "impact_words",
    "mermaid_graph",
    "one_line",
    "render_json",
    "render_markdown",
    "render_text",
    "summary_line",
    "to_dict",
]
