"""The live terminal view of a run (rich), used when stdout is a terminal.

Shows an overall progress bar (done/total, elapsed, ETA), the running steps with their attempt
and elapsed time, the steps waiting out a retry back-off with their countdown
(``↻ extract  attempt 2/4 in 3.2s``), and prints failures above it as they happen: a failed
attempt that will be retried (or remediated) as one line, a step that failed for good as a
block with the last lines of its log.

Whether a failed attempt was the last is known from the event that follows it for that step
(``RetryScheduled``, ``StepReady`` for remediation or the final attempt, or ``StepFinished``),
so the failure is held until then; all of them come in the same scheduler turn.

The ETA comes from ``observe.eta`` with the steps' typical durations from earlier runs (read by
the CLI before the run); "~" marks a guess. Events only update plain fields under a lock (O(1));
rich's refresh thread redraws at most ``refresh_per_second`` times, so a burst of a thousand
tiny steps costs no rendering. Imported lazily: ``rich.live`` is not on the plain-output path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from flowctl.observe.eta import EtaModel
from flowctl.observe.plain import describe_failure, log_note, on_worker
from flowctl.run.events import (
    AttemptFinished,
    AttemptKind,
    AttemptOutcome,
    AttemptPlaced,
    AttemptStarted,
    Event,
    OutputLine,
    RetryScheduled,
    RunFinished,
    RunStarted,
    StepFinished,
    StepReady,
    StepStatus,
)
from flowctl.spec.durations import format_duration

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

_MAX_ROWS = 12  # running and waiting steps shown; more are summarised in one line
TAIL_SHOWN = 5  # log lines under a step that failed for good


class LiveView:
    """A sink drawing the run on a terminal; ``stop`` ends the live display.

    ``typical``: each step's usual duration from earlier runs, and ``needs`` the steps' needs,
    for the ETA (both may be empty: the ETA is then a guess from this run's own steps)."""

    label = "the live view"

    def __init__(
        self,
        console: Console,
        *,
        refresh_per_second: float = 4.0,
        typical: Mapping[str, float] | None = None,
        needs: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._console = console
        self._rate = refresh_per_second
        self._typical = typical or {}
        self._needs = needs or {}
        self._lock = threading.Lock()
        self._live: Live | None = None  # once the run started
        self._total = 0
        self._done = 0
        self._failed = 0
        self._t0 = time.monotonic()
        self._eta: EtaModel | None = None
        self._max: dict[str, int] = {}  # step -> its attempts at most
        # step -> attempt, max, since, kind, and the worker it runs on (Dask) once known
        self._running: dict[str, tuple[int, int, float, AttemptKind, str]] = {}
        self._remote = False
        self._waiting: dict[str, tuple[int, float]] = {}  # step -> next attempt, due (monotonic)
        self._failure: dict[str, AttemptFinished] = {}  # a failed attempt not yet known to be the last

    def __call__(self, ev: Event) -> None:
        match ev:
            case OutputLine():
                from rich.text import Text

                from flowctl.masking import terminal_safe

                self._console.print(Text(f"{ev.step} | ", style="dim") + Text(terminal_safe(ev.line)))
            case RunStarted():
                self._start(ev)
            case RunFinished():
                self.stop()
            case _:
                out = self._update(ev)
                if out is not None:  # soft wrap: a long log path stays one line to copy
                    for item in out if isinstance(out, list) else [out]:
                        self._console.print(item, soft_wrap=True)

    def _update(self, ev: Event) -> RenderableType | list[RenderableType] | None:
        """Take a step's event into the view's state (under the lock the refresh thread also
        takes); what to print above the live display, if anything."""
        with self._lock:
            match ev:
                case AttemptStarted():
                    self._running[ev.step] = (ev.attempt, ev.max_attempts, time.monotonic(), ev.kind, "")
                    self._max[ev.step] = ev.max_attempts
                    self._waiting.pop(ev.step, None)
                    if self._eta is not None:
                        self._eta.leave(ev.step)
                case AttemptPlaced():
                    row = self._running.get(ev.step)
                    if row is not None and row[0] == ev.attempt:
                        self._running[ev.step] = (*row[:4], ev.host)
                case AttemptFinished():
                    self._running.pop(ev.step, None)
                    if ev.outcome is not AttemptOutcome.OK and ev.outcome is not AttemptOutcome.CANCELLED:
                        self._failure[ev.step] = ev
                case StepFinished():
                    self._running.pop(ev.step, None)
                    self._waiting.pop(ev.step, None)
                    self._done += 1
                    if self._eta is not None:
                        self._eta.finished(ev.step, ev.duration, executed=ev.attempts > 0)
                    failure = self._failure.pop(ev.step, None)
                    if ev.status is StepStatus.FAILED:
                        self._failed += 1
                    if ev.status in (StepStatus.FAILED, StepStatus.FAILED_ALLOWED):
                        return self._final_failure(ev, failure)
                case RetryScheduled():
                    self._running.pop(ev.step, None)
                    self._waiting[ev.step] = (ev.next_attempt, time.monotonic() + ev.delay)
                    failure = self._failure.pop(ev.step, None)
                    if failure is not None:
                        most = self._max.get(ev.step, ev.next_attempt)
                        return self._one_line(failure, f"attempt {ev.next_attempt}/{most} in {format_duration(ev.delay)}")
                case StepReady():
                    failure = self._failure.pop(ev.step, None)
                    if failure is not None:  # remediation, or the final attempt after it, comes next
                        then = "final attempt next" if failure.kind is AttemptKind.REMEDIATE else "remediating"
                        return self._one_line(failure, then)
        return None

    def _start(self, ev: RunStarted) -> None:
        from rich.live import Live

        with self._lock:
            self._total = len(ev.steps)
            self._t0 = time.monotonic()
            # Under Dask an attempt is handed to the cluster before a worker takes it.
            self._remote = ev.provenance.get("executor") == "dask"
            self._eta = EtaModel(ev.steps, self._typical, self._needs, ev.concurrency)
        self._console.print(f"Run {ev.run_id} of {ev.pipeline}: {len(ev.steps)} steps, concurrency {ev.concurrency}")
        self._live = Live(
            get_renderable=self.render, console=self._console, refresh_per_second=self._rate,
            transient=True, redirect_stdout=False, redirect_stderr=False,
        )
        self._live.start()

    def stop(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    @staticmethod
    def _headline(ev: AttemptFinished) -> str:
        label = "remediation of " if ev.kind is AttemptKind.REMEDIATE else ""
        return f"✗ {label}{ev.step} attempt {ev.attempt}{on_worker(ev.host)}: {describe_failure(ev)}"

    def _one_line(self, ev: AttemptFinished, then: str) -> RenderableType:
        """A failed attempt that is not the last: one line (issue 13)."""
        from rich.text import Text

        text = Text(f"{self._headline(ev)} · {then}", style="yellow")
        text.append(f"  {log_note(ev)}", style="dim")
        return text

    def _final_failure(self, ev: StepFinished, failure: AttemptFinished | None) -> list[RenderableType]:
        """A step that failed for good: its last attempt and the last lines of its log."""
        from rich.text import Text

        if failure is None:  # it never ran an attempt that failed (e.g. it could not be resumed)
            return [Text(f"✗ {ev.step}: {ev.reason or ev.status.value}", style="red")]
        allowed = " (continue_on_error)" if ev.status is StepStatus.FAILED_ALLOWED else ""
        text = Text(self._headline(failure) + allowed, style="yellow" if allowed else "red")
        text.append(f"  {log_note(failure)}", style="dim")
        return [text, *(Text(f"    {line}", style="dim") for line in failure.tail[-TAIL_SHOWN:])]

    def render(self) -> RenderableType:
        """What the live area shows now (rich calls it at each refresh)."""
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        with self._lock:
            done, total, failed = self._done, self._total, self._failed
            running = sorted(self._running.items(), key=lambda kv: kv[1][2])
            waiting = sorted(self._waiting.items(), key=lambda kv: kv[1][1])
            most = dict(self._max)
            active = [(step, now - since) for step, (_, _, since, _, _) in running]
            active += [(step, now - due) for step, (_, due) in waiting]
            eta = self._eta.estimate(active) if self._eta is not None and done < total else None
        elapsed = now - self._t0
        parts = [f"{done}/{total} done", f"{len(running)} running"]
        if waiting:
            parts.append(f"{len(waiting)} waiting to retry")
        parts += [f"{failed} failed", format_duration(elapsed)]
        if eta is not None:
            parts.append(f"ETA {eta.text()}")
        text = " · ".join(parts)
        bar = max(10, min(40, self._console.width - len(text) - 2))  # the counts stay on one line
        head = Table.grid(padding=(0, 1))
        head.add_row(ProgressBar(total=max(total, 1), completed=done, width=bar), Text(text))
        rows = Table.grid(padding=(0, 2))
        for step, (attempt, top, since, kind, host) in running[:_MAX_ROWS]:
            what = {AttemptKind.REMEDIATE: "remediating", AttemptKind.FINAL: f"final attempt {attempt}"}.get(
                kind, f"attempt {attempt}/{top}"
            )
            if host:
                what += f" on {host}"
            elif self._remote:
                what += ", waiting for a worker"
            rows.add_row(Text(f"  ▸ {step}", style="bold"), Text(what, style="dim"), Text(format_duration(now - since)))
        for step, (attempt, due) in waiting[: max(0, _MAX_ROWS - len(running))]:
            countdown = f"attempt {attempt}/{most.get(step, attempt)} in {format_duration(max(0.0, due - now))}"
            rows.add_row(Text(f"  ↻ {step}", style="yellow"), Text(countdown, style="yellow"), Text("waiting"))
        hidden = len(running) + len(waiting) - _MAX_ROWS
        if hidden > 0:
            rows.add_row(Text(f"  … and {hidden} more"), Text(""), Text(""))
        return Group(head, rows)


__all__ = ["TAIL_SHOWN", "LiveView"]
