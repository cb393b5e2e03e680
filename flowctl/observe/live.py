"""The live terminal view of a run (rich), used when stdout is a terminal.

Shows an overall progress bar (done/total, elapsed, ETA), the running steps with their attempt
and elapsed time, and prints failures above it as they happen with the last lines of their log.
Events only update plain fields under a lock (O(1)); rich's refresh thread redraws at most
``refresh_per_second`` times, so a burst of a thousand tiny steps costs no rendering.
Imported lazily: ``rich.live`` is not on the plain-output path.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

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
    StepStatus,
)
from flowctl.spec.durations import format_duration

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

_MAX_ROWS = 12  # running steps shown; more are summarised in one line


class LiveView:
    """A sink drawing the run on a terminal; ``stop`` ends the live display."""

    def __init__(self, console: Console, *, refresh_per_second: float = 4.0) -> None:
        self._console = console
        self._rate = refresh_per_second
        self._lock = threading.Lock()
        self._live: Live | None = None  # once the run started
        self._run_id = ""
        self._pipeline = ""
        self._total = 0
        self._done = 0
        self._failed = 0
        self._t0 = time.monotonic()
        # step -> attempt, max, since, kind, and the worker it runs on (Dask) once known
        self._running: dict[str, tuple[int, int, float, AttemptKind, str]] = {}
        self._remote = False

    def __call__(self, ev: Event) -> None:
        kind = type(ev)
        with self._lock:
            if kind is AttemptStarted:
                assert isinstance(ev, AttemptStarted)
                self._running[ev.step] = (ev.attempt, ev.max_attempts, time.monotonic(), ev.kind, "")
                return
            if kind is AttemptPlaced:
                assert isinstance(ev, AttemptPlaced)
                row = self._running.get(ev.step)
                if row is not None and row[0] == ev.attempt:
                    self._running[ev.step] = (*row[:4], ev.host)
                return
            if kind is StepFinished:
                assert isinstance(ev, StepFinished)
                self._running.pop(ev.step, None)
                self._done += 1
                if ev.status is StepStatus.FAILED:
                    self._failed += 1
                return
            if kind is RetryScheduled:
                self._running.pop(ev.step, None)  # type: ignore[union-attr]
                return
        if kind is AttemptFinished:
            assert isinstance(ev, AttemptFinished)
            if ev.outcome is not AttemptOutcome.OK and ev.outcome is not AttemptOutcome.CANCELLED:
                self._print_failure(ev)
        elif kind is OutputLine:
            assert isinstance(ev, OutputLine)
            from rich.text import Text

            self._console.print(Text(f"{ev.step} | ", style="dim") + Text(ev.line))
        elif kind is RunStarted:
            assert isinstance(ev, RunStarted)
            self._start(ev)
        elif kind is RunFinished:
            self.stop()

    def _start(self, ev: RunStarted) -> None:
        from rich.live import Live

        self._run_id, self._pipeline, self._total = ev.run_id, ev.pipeline, len(ev.steps)
        # Under Dask an attempt is handed to the cluster before a worker takes it.
        self._remote = ev.provenance.get("executor") == "dask"
        self._t0 = time.monotonic()
        self._console.print(f"Run {ev.run_id} of {ev.pipeline}: {len(ev.steps)} steps, concurrency {ev.concurrency}")
        self._live = Live(
            get_renderable=self._render, console=self._console, refresh_per_second=self._rate,
            transient=True, redirect_stdout=False, redirect_stderr=False,
        )
        self._live.start()

    def stop(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    def _print_failure(self, ev: AttemptFinished) -> None:
        from rich.text import Text

        label = "remediation of " if ev.kind is AttemptKind.REMEDIATE else ""
        text = Text(f"✗ {label}{ev.step} attempt {ev.attempt}{on_worker(ev.host)}: {describe_failure(ev)}", style="red")
        text.append(f"  {log_note(ev)}", style="dim")
        self._console.print(text)
        for line in ev.tail[-5:]:
            self._console.print(Text(f"    {line}", style="dim"))

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        with self._lock:
            done, total, failed = self._done, self._total, self._failed
            running = sorted(self._running.items(), key=lambda kv: kv[1][2])
        elapsed = now - self._t0
        eta = ""
        if 0 < done < total:
            eta = f" · ETA {format_duration(elapsed / done * (total - done))}"
        head = Table.grid(padding=(0, 1))
        head.add_row(
            ProgressBar(total=max(total, 1), completed=done, width=40),
            Text(f"{done}/{total} done · {len(running)} running · {failed} failed · {format_duration(elapsed)}{eta}"),
        )
        rows = Table.grid(padding=(0, 2))
        for step, (attempt, most, since, kind, host) in running[:_MAX_ROWS]:
            what = {AttemptKind.REMEDIATE: "remediating", AttemptKind.FINAL: f"final attempt {attempt}"}.get(
                kind, f"attempt {attempt}/{most}"
            )
            if host:
                what += f" on {host}"
            elif self._remote:
                what += ", waiting for a worker"
            rows.add_row(Text(f"  ▸ {step}", style="bold"), Text(what, style="dim"), Text(format_duration(now - since)))
        if len(running) > _MAX_ROWS:
            rows.add_row(Text(f"  … and {len(running) - _MAX_ROWS} more"), Text(""), Text(""))
        return Group(head, rows)


__all__ = ["LiveView"]
