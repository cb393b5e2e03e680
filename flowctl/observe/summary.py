"""The end-of-run summary: a table of every step and the root failure, set apart.

``RunSummary`` is a sink that keeps what the summary needs (O(1) per event). ``render_summary``
prints the table (step, status, attempts, duration, note), the totals (counts, wall time, time
saved by running in parallel), the details the CLI adds (the metrics block, alerts), what was
skipped or cancelled, the hints (logs, how to resume) and, when the run failed, ends with the
failures: each other step that failed for good with the end of its log, then the root failure
(the first step that failed for good, its exit code and the last lines of its log) as the very
last thing, nearest the prompt, so parallel output never buries the real error (issue 13).
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
    RunStatus,
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

    label = "the run summary"  # how warnings name this sink

    def __call__(self, ev: Event) -> None:
        match ev:
            case StepFinished():
                line = self._line(ev.step)
                line.status, line.attempts, line.duration = ev.status, ev.attempts, ev.duration
                line.reason, line.exit_code = ev.reason, ev.exit_code
            case AttemptFinished():
                if ev.outcome is not AttemptOutcome.OK and ev.kind is not AttemptKind.REMEDIATE:
                    self._line(ev.step).last_failure = ev
                if is_worker(ev.host):
                    self._line(ev.step).worker = ev.host
            case RunStarted():
                self.run_id, self.pipeline = ev.run_id, ev.pipeline
                self.order = list(ev.steps)
                self.steps = {s: StepLine(s) for s in ev.steps}
            case RunFinished():
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
    # Only a run that finished saved anything: a cancelled or interrupted one stopped early (issue 13).
    if saved > 0.05 and fin is not None and fin.status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
        text += f" · {format_duration(saved)} saved by running in parallel"
    return text


#: Failures other than the root one shown with their own log tail (the rest are named), and
#: how many lines of it; the root failure gets its whole tail.
OTHER_FAILURES = 5
OTHER_TAIL = 5


def context_lines(summary: RunSummary) -> list[str]:
    """What was skipped or cancelled (before the failures: they explain it)."""
    out = []
    skipped = [x.step for x in summary.with_status(StepStatus.SKIPPED)]
    if skipped:
        out.append(f"Skipped because an upstream step failed: {', '.join(skipped)}")
    cancelled = [x.step for x in summary.with_status(StepStatus.CANCELLED)]
    if cancelled:
        out.append(f"Cancelled: {', '.join(cancelled)}")
    return out


def _failure_block(line: StepLine, title: str, tail: int | None) -> list[tuple[str, str]]:
    failure = line.last_failure
    what = describe_failure(failure) if failure else line.reason
    # a step that failed before any attempt of its own (a foreach step whose items could not be
    # read, or whose producer failed) says no "after 0 attempts" (trial 17)
    attempts = f", after {line.attempts} attempt{'s' * (line.attempts != 1)}" if line.attempts else ""
    out = [(f"{title}: {line.step} ({what}{attempts})", "bold red" if title == "Root failure" else "red")]
    if failure is not None:
        if failure.log_path:
            out.append((f"  log: {failure.log_path}", ""))
        shown = failure.tail if tail is None else failure.tail[-tail:]
        out.extend((f"  | {text}", "dim") for text in shown)
    return out


def failure_lines(summary: RunSummary) -> list[tuple[str, str]]:
    """(text, style) lines, to print last: each other step that failed for good with the end
    of its log (up to ``OTHER_FAILURES``; the rest named in one line), then the root failure
    (the first step that failed for good) with its log tail, nearest the prompt (issue 13)."""
    root = summary.finished.root_failure if summary.finished else None
    if root is None or root not in summary.steps:
        return []
    others = [x for x in summary.with_status(StepStatus.FAILED) if x.step != root]
    out: list[tuple[str, str]] = [("", "")]
    if len(others) > OTHER_FAILURES:
        rest = others[OTHER_FAILURES:]
        out.append((f"Also failed ({len(rest)} more, see `flowctl show`): {', '.join(x.step for x in rest)}", "red"))
    for line in others[:OTHER_FAILURES]:
        out.extend(_failure_block(line, "Also failed", OTHER_TAIL))
    out.extend(_failure_block(summary.steps[root], "Root failure", None))
    return out


def render_summary(
    summary: RunSummary, console: Console, *, hint: Sequence[str] = (), details: Sequence[str] = ()
) -> None:
    """Print the summary with rich: the table, the totals, ``details`` (the metrics block and
    alerts, when given), what was skipped, ``hint``, and last the failures, root one last."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    rows, statuses, hidden = table_rows(summary)
    table = Table(box=box.SIMPLE_HEAD, title=f"Run {summary.run_id}", title_justify="left", pad_edge=False)
    for name in headers(summary):
        table.add_column(name, justify="right" if name in ("attempts", "duration") else "left",
                         overflow="fold" if name == "note" else "ellipsis")
    for row, status in zip(rows, statuses, strict=False):
        table.add_row(row[0], Text(row[1], style=_STYLE.get(status, "")), *row[2:])
    console.print(table)
    if hidden:
        console.print(Text(f"… and {hidden} more steps that succeeded", style="dim"))
    console.print(Text(totals_line(summary)), soft_wrap=True)
    for line in [*details, *context_lines(summary), *hint]:
        console.print(Text(line, style="bold red" if line.startswith("FIRING") else ""), soft_wrap=True)
    for text, style in failure_lines(summary):
        console.print(Text(text, style=style), soft_wrap=True)


def write_summary(
    summary: RunSummary, out: IO[str], *, hint: Sequence[str] = (), details: Sequence[str] = ()
) -> None:
    """The same summary as plain aligned text (no rich: fast, nothing that redraws)."""
    rows, _, hidden = table_rows(summary)
    names = headers(summary)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(names[:-1])]

    def fmt(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in (2, 3) else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        ]
        return ("  ".join(parts) + "  " + cells[-1]).rstrip()

    lines = [f"Run {summary.run_id}", fmt(names), fmt(["-" * w for w in widths] + ["-" * 4])]
    lines.extend(fmt(r) for r in rows)
    if hidden:
        lines.append(f"… and {hidden} more steps that succeeded")
    lines.append(totals_line(summary))
    lines.extend(details)
    lines.extend(context_lines(summary))
    lines.extend(hint)
    lines.extend(text for text, _ in failure_lines(summary))
    out.write("\n".join(lines) + "\n")
    out.flush()


__all__ = [
    "MAX_ROWS", "OTHER_FAILURES", "OTHER_TAIL", "RunSummary", "StepLine", "context_lines", "failure_lines",
    "render_summary", "table_rows", "totals_line", "write_summary",
]
