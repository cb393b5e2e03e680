"""Geometry of the report's SVG figures: the Gantt, the DAG, the baseline bars, the history charts.

Pure functions from the report model to frozen shapes with pixel coordinates (rounded to
0.1 px, so the same run gives the same bytes) and the text of each shape's ``<title>``. The
templates only write these out. The DAG's columns are the plan's levels (no Graphviz); within a
column steps are ordered by where what they need sits (one barycentre pass), which keeps most
edges short. Nothing here reads state or escapes HTML (the templates autoescape).

A step's Gantt lanes come from ``gantt_lanes``: one lane holding every attempt for a plain
step. A foreach step (issue 15) gets a few lanes however many items it has: the span its items
ran in, that span split by item status in proportion to the counts, then one lane per failed
item and per slowest item (``state.items.summarize`` picks them, as ``flowctl show`` does).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from flowctl.report.model import (
    AttemptRow,
    HistoryReport,
    ItemGroup,
    RunReport,
    StepTrend,
    StepView,
)
from flowctl.spec.durations import format_duration

GANTT_LABEL = 220  # px for the step names
GANTT_CHART = 880
GANTT_ROW = 20
GANTT_TOP = 22  # the time axis
NODE_W, NODE_H = 168, 40
COL_GAP, ROW_GAP = 44, 12
MARGIN = 8


def slug(text: str) -> str:
    """A status or outcome as a CSS class word: ``failed (allowed)`` → ``failed-allowed``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dur(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(max(0.0, seconds))


def _r(value: float) -> float:
    return round(value, 1)


def coord(value: float) -> str:
    """A coordinate as text: at most one decimal, none when it is whole."""
    return f"{value:.1f}".removesuffix(".0")


# -- Gantt ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of a Gantt lane: ``queued`` (ready → start), ``backoff`` (retry delay) or ``attempt``."""

    kind: str
    x: float
    w: float
    css: str
    title: str
    attempt: int | None = None
    item: str | None = None  # an item bar: the item's key


@dataclass(frozen=True, slots=True)
class Lane:
    """One row of the Gantt: a label and its segments."""

    label: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class GanttRow:
    step: str
    y: float
    css: str  # the step's status class
    critical: bool
    label: str
    title: str
    lanes: tuple[Lane, ...]


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Gantt:
    width: float
    height: float
    row_h: float  # a lane's height: a step's lanes sit one under the other
    chart_x: float
    rows: tuple[GanttRow, ...]
    ticks: tuple[Tick, ...]


_TICK_STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600,
               900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def ticks(span: float, width: float, offset: float, *, most: int = 10) -> tuple[Tick, ...]:
    """Axis ticks every round step so that at most ``most`` fit ``span`` seconds."""
    step = next((s for s in _TICK_STEPS if span / s <= most), _TICK_STEPS[-1])
    count = int(span / step + 1e-9)
    return tuple(Tick(_r(offset + i * step / span * width), dur(i * step) if i else "0") for i in range(count + 1))


def _attempt_title(a: AttemptRow) -> str:
    what = {"remediate": " (remediation)", "final": " (final, after remediation)"}.get(a.kind, "")
    code = f", exit {a.exit_code}" if a.exit_code is not None else ""
    took = dur(a.finished_at - a.started_at) if a.finished_at is not None else "still running"
    error = f" — {a.error}" if a.error else ""
    return f"try {a.attempt}{what}: {a.outcome}{code}, {took}{error}"


#: Narrower waits are left out of the figure (the data still holds their times).
_VISIBLE = 0.5


def gantt_lanes(step: StepView, x: _Scale) -> tuple[Lane, ...]:
    """The lanes of one step (see the module docstring): a plain step is one lane. Titles leave
    the step out: the row says it (and the hover panel adds it)."""
    segments: list[Segment] = []
    for a in step.attempts:
        if a.backoff_from is not None and a.backoff:
            w = x.width(min(a.backoff_from + a.backoff, a.started_at) - a.backoff_from)
            if w >= _VISIBLE:
                segments.append(Segment("backoff", x(a.backoff_from), _r(w), "backoff",
                                        f"retry back-off {dur(a.backoff)} before try {a.attempt}"))
        if a.waited_from is not None and x.width(a.started_at - a.waited_from) >= _VISIBLE:
            segments.append(Segment("queued", x(a.waited_from), _r(x.width(a.started_at - a.waited_from)), "queued",
                                    f"try {a.attempt} queued {dur(a.started_at - a.waited_from)} (ready, waiting for a free slot)"))
        end = a.finished_at if a.finished_at is not None else x.end
        css = f"oc-{slug(a.outcome)}" + (f" kind-{slug(a.kind)}" if a.kind != "attempt" else "")
        segments.append(Segment("attempt", x(a.started_at), max(1.0, _r(x.width(end - a.started_at))), css,
                                _attempt_title(a), a.attempt))
    if step.items is not None:
        return _item_lanes(step, step.items, x, segments)
    return (Lane(step.step, tuple(segments)),)


#: An item's status as a colour class (the outcomes' colours: an item is like an attempt).
_ITEM_CSS = {"succeeded": "oc-ok", "dead-lettered": "oc-failed", "poisoned": "oc-failed", "retrying": "oc-running",
             "running": "oc-running", "cancelled": "oc-cancelled", "interrupted": "oc-interrupted",
             "reused": "st-reused", "dropped": "st-skipped"}


def item_css(status: str) -> str:
    return _ITEM_CSS.get(status, f"st-{slug(status)}")


def items_text(group: ItemGroup) -> str:
    """``48 succeeded, 2 dead-lettered`` (most first)."""
    return ", ".join(f"{n} {status}" for status, n in sorted(group.summary.counts.items(), key=lambda c: (-c[1], c[0])))


def _item_lanes(step: StepView, group: ItemGroup, x: _Scale, segments: list[Segment]) -> tuple[Lane, ...]:
    """A foreach step's lanes (see the module docstring): never one per item."""
    s = group.summary
    total = sum(s.counts.values())
    start, end = group.started_at, group.finished_at
    rate = f", {s.items_per_second:.1f} items/s" if s.items_per_second else ""
    head = (f"{total} item{'s' * (total != 1)}: {items_text(group)}; error rate {s.error_rate * 100:.1f}%, "
            f"p50 {dur(s.p50)}, p95 {dur(s.p95)}, p99 {dur(s.p99)}{rate}")
    counts: list[Segment] = []
    if start is not None and end is not None:
        segments.append(Segment("span", x(start), max(1.0, _r(x.width(end - start))), f"st-{slug(step.status)}", head))
        left, width = x(start), max(float(len(s.counts)), x.width(end - start))
        for status, n in sorted(s.counts.items(), key=lambda c: (-c[1], c[0])):
            w = width * n / total
            counts.append(Segment("count", _r(left), max(1.0, _r(w)), item_css(status),
                                  f"{n} {status} ({n / total * 100:.0f}% of the items)"))
            left += w
    lanes = [Lane(step.step, tuple(segments)), Lane(short(items_text(group), 34), tuple(counts))]
    shown = list(s.failed) + [r for r in s.slowest if r not in s.failed]
    for r in shown:
        if r.started_at is None:
            continue
        stop = r.finished_at if r.finished_at is not None else x.end
        code = f", exit {r.exit_code}" if r.exit_code is not None else ""
        tries = f", {r.attempts} attempt{'s' * (r.attempts != 1)}"
        title = f"item {r.key}: {r.status}{code}{tries}, {dur(r.duration)}"
        bar = Segment("item", x(r.started_at), max(1.0, _r(x.width(stop - r.started_at))), item_css(r.status), title,
                      item=r.key)
        lanes.append(Lane("item " + short(r.key, 23), (bar,)))
    return tuple(lanes)


class _Scale:
    """Seconds since ``start`` → x pixels."""

    def __init__(self, start: float, end: float, left: float, width: float) -> None:
        self.start, self.end, self.left, self.px = start, end, left, width
        self.span = max(end - start, 1e-9)

    def __call__(self, t: float) -> float:
        return _r(self.left + (t - self.start) / self.span * self.px)

    def width(self, seconds: float) -> float:
        return max(0.0, seconds / self.span * self.px)


def _step_title(s: StepView, *, described: bool = True) -> str:
    parts = [f"{s.step}: {s.status}"]
    if s.description and described:
        parts.append(s.description)
    if s.duration is not None:
        parts.append(f"{dur(s.duration)} ({s.share * 100:.0f}% of the wall time)" if s.share is not None else dur(s.duration))
    if s.attempts:
        parts.append(f"{len(s.attempts)} attempt{'s' * (len(s.attempts) != 1)}")

    if s.reason:
        parts.append(s.reason)
    return " — ".join(parts)


def gantt(report: RunReport) -> Gantt:
    h = report.header
    end = max([h.started_at + report.metrics.wall_seconds]
              + [a.finished_at for s in report.steps for a in s.attempts if a.finished_at is not None]
              + [s.items.finished_at for s in report.steps if s.items is not None and s.items.finished_at is not None])
    scale = _Scale(h.started_at, end, GANTT_LABEL, GANTT_CHART)
    rows = []
    y = GANTT_TOP
    for s in report.steps:
        lanes = gantt_lanes(s, scale)
        rows.append(GanttRow(s.step, y, f"st-{slug(s.status)}", s.critical, short(s.step, 30), _step_title(s), lanes))
        y += GANTT_ROW * len(lanes)
    return Gantt(GANTT_LABEL + GANTT_CHART + MARGIN, y + 4, GANTT_ROW, GANTT_LABEL, tuple(rows),
                 ticks(scale.span, GANTT_CHART, GANTT_LABEL))


# -- DAG ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    step: str
    x: float
    y: float
    css: str
    critical: bool
    label: str
    detail: str
    title: str


@dataclass(frozen=True, slots=True)
class Edges:
    """Every edge as one path (one element however many ``needs`` there are); the critical
    path's edges as a second one, drawn on top."""

    path: str
    critical: str


@dataclass(frozen=True, slots=True)
class Dag:
    width: float
    height: float
    node_w: float
    node_h: float
    nodes: tuple[Node, ...]
    edges: Edges


def _columns(report: RunReport) -> list[list[str]]:
    """The plan's levels, each ordered by the mean row of what its steps need."""
    needs = {s.step: s.needs for s in report.steps}
    row: dict[str, float] = {}
    columns: list[list[str]] = []
    for level in report.levels:
        keyed = [(sum(row[n] for n in needs.get(s, ())) / len(needs[s]) if needs.get(s) else float(i), i, s)
                 for i, s in enumerate(level)]
        column = [s for _, _, s in sorted(keyed)] if columns else list(level)
        row.update({s: float(i) for i, s in enumerate(column)})
        columns.append(column)
    return columns


def dag(report: RunReport) -> Dag:
    by_id = {s.step: s for s in report.steps}
    pos: dict[str, tuple[float, float]] = {}
    nodes = []
    columns = _columns(report)
    for c, column in enumerate(columns):
        for r, step in enumerate(column):
            s = by_id[step]
            x, y = MARGIN + c * (NODE_W + COL_GAP), MARGIN + r * (NODE_H + ROW_GAP)
            pos[step] = (x, y)
            detail = dur(s.duration) + (f" · {s.share * 100:.0f}%" if s.share is not None else "")
            nodes.append(Node(step, x, y, f"st-{slug(s.status)}", s.critical, short(step, 24),
                              detail if s.duration is not None else s.status, _step_title(s, described=False)))
    path = report.metrics.critical_path
    on_path = set(itertools.pairwise(path))
    plain: list[str] = []
    critical: list[str] = []
    for s in report.steps:
        for need in s.needs:
            if need not in pos or s.step not in pos:
                continue
            (x1, y1), (x2, y2) = pos[need], pos[s.step]
            x1, y1, y2 = x1 + NODE_W, y1 + NODE_H / 2, y2 + NODE_H / 2
            mid = _r((x1 + x2) / 2)
            curve = f"M{coord(x1)} {coord(y1)}C{coord(mid)} {coord(y1)} {coord(mid)} {coord(y2)} {coord(x2)} {coord(y2)}"
            (critical if (need, s.step) in on_path else plain).append(curve)
    width = MARGIN * 2 + len(columns) * (NODE_W + COL_GAP) - COL_GAP
    height = MARGIN * 2 + max((len(c) for c in columns), default=0) * (NODE_H + ROW_GAP) - ROW_GAP
    return Dag(max(width, 0), max(height, 0), NODE_W, NODE_H, tuple(nodes), Edges("".join(plain), "".join(critical)))


# -- duration vs baseline -------------------------------------------------------------------

BAR_W = 180


@dataclass(frozen=True, slots=True)
class Comparison:
    step: str
    description: str | None
    css: str
    duration: str
    baseline: str
    delta: str  # "+200%", "-12%", or "" without a baseline
    slower: bool
    run_w: float
    base_w: float


def comparisons(report: RunReport) -> tuple[Comparison, ...]:
    """One row per step that ran, its bar and its baseline's on one scale."""
    timed = [s for s in report.steps if s.duration is not None]
    top = max([s.duration or 0.0 for s in timed] + [s.baseline or 0.0 for s in timed] + [1e-9])
    return tuple(
        Comparison(
            s.step, s.description, f"st-{slug(s.status)}", dur(s.duration), dur(s.baseline),
            f"{s.delta * 100:+.0f}%" if s.delta is not None else "", s.slower,
            max(1.0, _r((s.duration or 0.0) / top * BAR_W)), _r((s.baseline or 0.0) / top * BAR_W),
        )
        for s in timed
    )


# -- history --------------------------------------------------------------------------------

HISTORY_W, HISTORY_H = 900, 160
TREND_W, TREND_H = 260, 36


@dataclass(frozen=True, slots=True)
class RunBar:
    run_id: str
    x: float
    y: float
    w: float
    h: float
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class RunsChart:
    width: float
    height: float
    bars: tuple[RunBar, ...]
    top: str  # the longest wall time, for the axis


def runs_chart(history: HistoryReport) -> RunsChart:
    walls = [r.wall_seconds for r in history.runs if r.wall_seconds is not None]
    top = max([*walls, 1e-09])
    slot = HISTORY_W / max(1, len(history.runs))
    w = max(2.0, min(24.0, slot - 2))
    bars = []
    for i, r in enumerate(history.runs):
        h = max(2.0, _r((r.wall_seconds or 0.0) / top * (HISTORY_H - 10)))
        bars.append(RunBar(r.run_id, _r(i * slot + (slot - w) / 2), _r(HISTORY_H - h), _r(w), h,
                           f"st-{slug(r.status)}", f"{r.run_id}: {r.status}, {dur(r.wall_seconds)}"))
    return RunsChart(HISTORY_W, HISTORY_H, tuple(bars), dur(top if walls else None))


@dataclass(frozen=True, slots=True)
class Trend:
    step: str
    raw: tuple[str, ...]  # polyline point lists (broken where the step did not run)
    p50: tuple[str, ...]
    p95: tuple[str, ...]
    title: str


def _polylines(values: Sequence[float | None], top: float, count: int) -> tuple[str, ...]:
    slot = TREND_W / max(1, count - 1)
    lines: list[list[str]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            if lines[-1]:
                lines.append([])
            continue
        lines[-1].append(f"{_r(i * slot)},{_r(TREND_H - 2 - v / top * (TREND_H - 4))}")
    return tuple(" ".join(p) for p in lines if len(p) > 1)


def trend(t: StepTrend, count: int) -> Trend:
    top = max([v for v in t.durations if v is not None] + [1e-9])
    title = f"{t.step}: p50 {dur(t.p50)}, p95 {dur(t.p95)} over {t.runs} run{'s' * (t.runs != 1)}"
    return Trend(t.step, _polylines(t.durations, top, count), _polylines(t.rolling_p50, top, count),
                 _polylines(t.rolling_p95, top, count), title)


__all__ = [
    "Comparison", "Dag", "Edges", "Gantt", "Lane", "RunsChart", "Segment", "Trend",
    "comparisons", "coord", "dag", "dur", "gantt", "gantt_lanes", "item_css", "items_text", "runs_chart", "short", "slug", "ticks", "trend",
]
