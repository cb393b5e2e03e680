"""The end-of-run summary: a table of every step and the root failure, set apart.

``RunSummary`` is a sink that keeps what the summary needs (O(1) per event). ``render_summary``
prints the table (step, status, attempts, duration, note), the totals (counts, wall time, time
saved by running in parallel) and, when the run failed, ends with the root failure: the first
step that failed for good, its exit code and the last lines of its log, followed by what was
skipped or cancelled because of it, so parallel output never buries the real error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from flowctl.observe.plain import describe_failure, is_worker
from flowctl.run.events import (
    AttemptFinished,
    AttemptKind,
    AttemptOutcome,
    Event,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStatus,
)
from flowctl.spec.durations import format_duration

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(slots=True)
class StepLine:
    """One step's line in the end-of-run summary."""

    step: str
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    duration: float = 0.0
    reason: str = ""
    exit_code: int | None = None
    last_failure: AttemptFinished | None = None
    worker: str = ""  # where its last attempt ran, when that was a remote worker (Dask)


@dataclass(slots=True)
class RunSummary:
    """Collects one run's outcome from its events."""

    run_id: str = ""
    pipeline: str = ""
    order: list[str] = field(default_factory=list)
    steps: dict[str, StepLine] = field(default_factory=dict)
    finished: RunFinished | None = None

    def __call__(self, ev: Event) -> None:
        kind = type(ev)
        if kind is StepFinished:
            assert isinstance(ev, StepFinished)
            line = self._line(ev.step)
            line.status, line.attempts, line.duration = ev.status, ev.attempts, ev.duration
            line.reason, line.exit_code = ev.reason, ev.exit_code
        elif kind is AttemptFinished:
            assert isinstance(ev, AttemptFinished)
            if ev.outcome is not AttemptOutcome.OK and ev.kind is not AttemptKind.REMEDIATE:
                self._line(ev.step).last_failure = ev
            if is_worker(ev.host):
                self._line(ev.step).worker = ev.host
        elif kind is RunStarted:
            assert isinstance(ev, RunStarted)
            self.run_id, self.pipeline = ev.run_id, ev.pipeline
            self.order = list(ev.steps)
            self.steps = {s: StepLine(s) for s in ev.steps}
        elif kind is RunFinished:
            assert isinstance(ev, RunFinished)
            self.finished = ev

    def _line(self, step: str) -> StepLine:
        line = self.steps.get(step)
        if line is None:
            line = self.steps[step] = StepLine(step)
            self.order.append(step)
        return line

    def with_status(self, *statuses: StepStatus) -> list[StepLine]:
        return [self.steps[s] for s in self.order if self.steps[s].status in statuses]

    @property
    def busy_time(self) -> float:
        return sum(line.duration for line in self.steps.values())


_STYLE = {
    StepStatus.SUCCEEDED: "green",
    StepStatus.FAILED: "bold red",
    StepStatus.FAILED_ALLOWED: "yellow",
    StepStatus.SKIPPED: "dim",
    StepStatus.CANCELLED: "magenta",
    StepStatus.REUSED: "cyan",
    StepStatus.UP_TO_DATE: "cyan",
}

#: Up to this many steps the table shows every step; beyond, every step that did not simply
#: succeed plus the slowest few that did (a 1,000-row table helps nobody, and costs seconds).
MAX_ROWS = 40
SLOWEST = 10

_HEADERS = ("step", "status", "attempts", "duration", "note")
_WORKER_HEADERS = ("step", "status", "attempts", "duration", "worker", "note")


def headers(summary: RunSummary) -> tuple[str, ...]:
    """The table's columns: a ``worker`` column when attempts ran on remote workers."""
    return _WORKER_HEADERS if any(line.worker for line in summary.steps.values()) else _HEADERS


def table_rows(summary: RunSummary) -> tuple[list[tuple[str, ...]], list[StepStatus], int]:
    """The rows to show (as text), their statuses, and how many succeeded steps were left out."""
    workers = headers(summary) is _WORKER_HEADERS
    lines = [summary.steps[s] for s in summary.order]
    hidden = 0
    if len(lines) > MAX_ROWS:
        ok = [x for x in lines if x.status is StepStatus.SUCCEEDED]
        keep = {id(x) for x in sorted(ok, key=lambda x: -x.duration)[:SLOWEST]}
        shown = [x for x in lines if x.status is not StepStatus.SUCCEEDED or id(x) in keep]
        hidden = len(lines) - len(shown)
        lines = shown
    rows: list[tuple[str, ...]] = []
    for line in lines:
        note = line.reason
        if line.status is StepStatus.FAILED_ALLOWED and line.reason:
            note = f"{line.reason} (continue_on_error)"
        rows.append((
            line.step,
            line.status.value,
            str(line.attempts) if line.attempts else "-",
            format_duration(line.duration) if line.attempts else "-",
            *((line.worker or "-",) if workers else ()),
            note,
        ))
    return rows, [x.status for x in lines], hidden


def totals_line(summary: RunSummary) -> str:
    """``3 succeeded, 1 failed, 2 skipped · wall time 4.1s · 2.2s saved by running in parallel``."""
    fin = summary.finished
    wall = fin.duration if fin else 0.0
    counts = []
    for label, statuses in (
        ("succeeded", (StepStatus.SUCCEEDED,)),
        ("failed", (StepStatus.FAILED,)),
        ("failed (allowed)", (StepStatus.FAILED_ALLOWED,)),
        ("skipped", (StepStatus.SKIPPED,)),
        ("cancelled", (StepStatus.CANCELLED,)),
        ("reused", (StepStatus.REUSED, StepStatus.UP_TO_DATE)),
    ):
        n = len(summary.with_status(*statuses))
        if n or label in ("succeeded", "failed"):
            counts.append(f"{n} {label}")
    saved = summary.busy_time - wall
    text = f"{', '.join(counts)} · wall time {format_duration(wall)}"
    if saved > 0.05:
        text += f" · {format_duration(saved)} saved by running in parallel"
    return text


def root_failure_lines(summary: RunSummary) -> list[tuple[str, str]]:
    """(text, style) lines: the first step that failed for good, its exit code and log tail,
    then what else failed and what was skipped or cancelled."""
    root = summary.finished.root_failure if summary.finished else None
    if root is None or root not in summary.steps:
        return []
    line = summary.steps[root]
    failure = line.last_failure
    what = describe_failure(failure) if failure else line.reason
    out = [("", ""), (f"Root failure: {root} ({what}, after {line.attempts} attempt{'s' * (line.attempts != 1)})", "bold red")]
    if failure is not None:
        if failure.log_path:
            out.append((f"  log: {failure.log_path}", ""))
        out.extend((f"  | {text}", "dim") for text in failure.tail)
    others = [x.step for x in summary.with_status(StepStatus.FAILED) if x.step != root]
    if others:
        out.append((f"Also failed: {', '.join(others)}", "red"))
    skipped = [x.step for x in summary.with_status(StepStatus.SKIPPED)]
    if skipped:
        out.append((f"Skipped because an upstream step failed: {', '.join(skipped)}", ""))
    cancelled = [x.step for x in summary.with_status(StepStatus.CANCELLED)]
    if cancelled:
        out.append((f"Cancelled: {', '.join(cancelled)}", ""))
    return out


def render_summary(summary: RunSummary, console: Console, *, hint: Sequence[str] = ()) -> None:
    """Print the summary table, totals and (last, set apart) the root failure, with rich."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    rows, statuses, hidden = table_rows(summary)
    table = Table(box=box.SIMPLE_HEAD, title=f"Run {summary.run_id}", title_justify="left", pad_edge=False)
    for name in headers(summary):
        table.add_column(name, justify="right" if name in ("attempts", "duration") else "left",
                         overflow="fold" if name == "note" else "ellipsis")
    for row, status in zip(rows, statuses):
        table.add_row(row[0], Text(row[1], style=_STYLE.get(status, "")), *row[2:])
    console.print(table)
    if hidden:
        console.print(Text(f"… and {hidden} more steps that succeeded", style="dim"))
    console.print(Text(totals_line(summary)), soft_wrap=True)
    for text, style in root_failure_lines(summary):
        console.print(Text(text, style=style), soft_wrap=True)
    for line in hint:
        console.print(Text(line), soft_wrap=True)


def write_summary(summary: RunSummary, out: IO[str], *, hint: Sequence[str] = ()) -> None:
    """The same summary as plain aligned text (no rich: fast, nothing that redraws)."""
    rows, _, hidden = table_rows(summary)
    names = headers(summary)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(names[:-1])]

    def fmt(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in (2, 3) else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return ("  ".join(parts) + "  " + cells[-1]).rstrip()

    lines = [f"Run {summary.run_id}", fmt(names), fmt(["-" * w for w in widths] + ["-" * 4])]
    lines.extend(fmt(r) for r in rows)
    if hidden:
        lines.append(f"… and {hidden} more steps that succeeded")
    lines.append(totals_line(summary))
    lines.extend(text for text, _ in root_failure_lines(summary))
    lines.extend(hint)
    out.write("\n".join(lines) + "\n")
    out.flush()


__all__ = [
    "MAX_ROWS", "RunSummary", "StepLine", "render_summary", "root_failure_lines", "table_rows",
    "totals_line", "write_summary",
]
