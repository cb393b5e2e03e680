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
from typing import TYPE_CHECKING

from flowctl.observe.plain import describe_failure, fmt_duration
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

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(slots=True)
class StepLine:
    step: str
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    duration: float = 0.0
    reason: str = ""
    exit_code: int | None = None
    last_failure: AttemptFinished | None = None


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


def render_summary(summary: RunSummary, console: Console, *, hint: Sequence[str] = ()) -> None:
    """Print the summary table, totals and (last, set apart) the root failure."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, title=f"Run {summary.run_id}", title_justify="left", pad_edge=False)
    table.add_column("step")
    table.add_column("status")
    table.add_column("attempts", justify="right")
    table.add_column("duration", justify="right")
    table.add_column("note", overflow="fold")
    for sid in summary.order:
        line = summary.steps[sid]
        note = line.reason
        if line.status is StepStatus.FAILED_ALLOWED and line.reason:
            note = f"{line.reason} (continue_on_error)"
        table.add_row(
            sid,
            Text(line.status.value, style=_STYLE.get(line.status, "")),
            str(line.attempts) if line.attempts else "-",
            fmt_duration(line.duration) if line.attempts else "-",
            note,
        )
    console.print(table)
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
    totals = f"{', '.join(counts)} · wall time {fmt_duration(wall)}"
    if saved > 0.05:
        totals += f" · {fmt_duration(saved)} saved by running in parallel"
    console.print(Text(totals), soft_wrap=True)
    render_root_failure(summary, console)
    for line in hint:
        console.print(Text(line), soft_wrap=True)


def render_root_failure(summary: RunSummary, console: Console) -> None:
    """The first step that failed for good, its exit code and log tail; then its fallout."""
    from rich.text import Text

    root = summary.finished.root_failure if summary.finished else None
    if root is None or root not in summary.steps:
        return
    line = summary.steps[root]
    failure = line.last_failure
    what = describe_failure(failure) if failure else line.reason
    console.print()
    console.print(
        Text(f"Root failure: {root} ({what}, after {line.attempts} attempt{'s' * (line.attempts != 1)})",
             style="bold red"),
        soft_wrap=True,
    )
    if failure is not None:
        if failure.log_path:
            console.print(Text(f"  log: {failure.log_path}"), soft_wrap=True)
        for text in failure.tail:
            console.print(Text(f"  | {text}", style="dim"), soft_wrap=True)
    others = [x.step for x in summary.with_status(StepStatus.FAILED) if x.step != root]
    if others:
        console.print(Text(f"Also failed: {', '.join(others)}", style="red"), soft_wrap=True)
    skipped = [x.step for x in summary.with_status(StepStatus.SKIPPED)]
    if skipped:
        console.print(Text(f"Skipped because an upstream step failed: {', '.join(skipped)}"), soft_wrap=True)
    cancelled = [x.step for x in summary.with_status(StepStatus.CANCELLED)]
    if cancelled:
        console.print(Text(f"Cancelled: {', '.join(cancelled)}"), soft_wrap=True)


__all__ = ["RunSummary", "StepLine", "render_root_failure", "render_summary"]
