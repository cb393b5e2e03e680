"""Plain, line-oriented run output for cron, CI and pipes (and ``--no-progress``).

One line per thing that happened, each with an ISO-8601 UTC timestamp and the run id, nothing
that redraws and no colour::

    2026-11-25T02:00:01Z 20261125T020000-3fa1 START load (attempt 1/3)
    2026-11-25T02:00:05Z 20261125T020000-3fa1 OK load 4.2s
    2026-11-25T02:00:05Z 20261125T020000-3fa1 FAIL load exit 3 (attempt 1/3, log: …)

Lines are flushed once per turn of the scheduler's loop (``flush``, called after each batch of
events), not one by one: a cron log still shows at once a step that started and hangs.
"""

from __future__ import annotations

import time
from typing import IO

from flowctl.masking import terminal_safe
from flowctl.run.events import (
    AttemptFinished,
    AttemptKind,
    AttemptOutcome,
    AttemptPlaced,
    AttemptStarted,
    Event,
    ItemFinished,
    ItemStarted,
    ItemStatus,
    OutputLine,
    RetryScheduled,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStatus,
)
from flowctl.spec.durations import format_duration


def describe_failure(ev: AttemptFinished) -> str:
    """``exit 3``, ``timed out after 5.0s``, ``cancelled``, ``could not start: …``, ``worker-lost: …``."""
    if ev.outcome is AttemptOutcome.TIMEOUT:
        return f"timed out after {format_duration(ev.duration)}"
    if ev.outcome is AttemptOutcome.CANCELLED:
        return "cancelled"
    if ev.outcome is AttemptOutcome.ERROR:
        return f"could not start: {ev.error}"
    if ev.outcome is AttemptOutcome.LOST:
        return f"worker-lost: {ev.error}" if ev.error else "worker-lost"
    return f"exit {ev.exit_code}"


def is_worker(host: str) -> bool:
    """Whether ``host`` names a remote worker (``tcp://10.0.0.5:40123``) rather than this machine."""
    return "://" in host


def on_worker(host: str) -> str:
    """`` on tcp://…`` for an attempt that ran on a worker, else nothing."""
    return f" on {host}" if is_worker(host) else ""


def log_note(ev: AttemptFinished) -> str:
    """``(log: PATH)``, or ``(no output)`` for an attempt that printed nothing (it has no log)."""
    return f"(log: {ev.log_path})" if ev.log_path else "(no output)"


def _unit(step: str, keys: tuple[str, ...], batch: int) -> str:
    """``each item "a.csv"``, or ``each batch 3`` (its items' keys, up to three)."""
    if len(keys) == 1 and not batch:
        return f"{step} item {keys[0]}"
    shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
    return f"{step} batch {batch} ({shown})" if batch else f"{step} items {shown}"


_STATUS_WORD = {
    StepStatus.FAILED: "FAILED",
    StepStatus.FAILED_ALLOWED: "ALLOWED",
    StepStatus.SKIPPED: "SKIP",
    StepStatus.CANCELLED: "CANCEL",
    StepStatus.REUSED: "REUSED",
    StepStatus.UP_TO_DATE: "UP-TO-DATE",
}


class PlainSink:
    """Writes one timestamped line per event to ``out``."""

    label = "the run's output"  # how warnings name this sink

    def __init__(self, out: IO[str], *, logs_dir: str = "") -> None:
        self._out = out
        try:  # on a terminal (run --no-progress), a step's output must not drive it
            self._tty = out.isatty()
        except (AttributeError, ValueError):
            self._tty = False
        self._logs_dir = logs_dir
        self._run_id = ""
        self._max: dict[str, int] = {}
        self._batches: dict[tuple[str, int], int] = {}  # (step, seq) of a running batch -> its number
        self._stamp_second = -1
        self._stamp = ""

    def _ts(self, at: float) -> str:
        second = int(at)
        if second != self._stamp_second:
            self._stamp_second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        return self._stamp

    def _line(self, at: float, text: str) -> None:
        self._out.write(f"{self._ts(at)} {self._run_id} {text}\n")

    def flush(self) -> None:
        """Push out the lines of this turn (the scheduler calls it after each batch)."""
        self._out.flush()

    def __call__(self, ev: Event) -> None:
        match ev:
            case AttemptStarted():
                self._max[ev.step] = ev.max_attempts
                if ev.kind is AttemptKind.REMEDIATE:
                    self._line(ev.at, f"REMEDIATE {ev.step} (attempt {ev.attempt})")
                elif ev.kind is AttemptKind.FINAL:
                    self._line(ev.at, f"START {ev.step} (final attempt {ev.attempt}, after remediation)")
                else:
                    chaos = f", chaos: {ev.injected}" if ev.injected else ""  # issue 17
                    self._line(ev.at, f"START {ev.step} (attempt {ev.attempt}/{ev.max_attempts}{chaos})")
            case StepFinished():
                if ev.status is StepStatus.SUCCEEDED:
                    self._line(ev.at, f"OK {ev.step} {format_duration(ev.duration)}")
                else:
                    why = f" ({ev.reason})" if ev.reason else ""
                    self._line(ev.at, f"{_STATUS_WORD.get(ev.status, ev.status.name)} {ev.step}{why}")
            case AttemptFinished():
                if ev.outcome is not AttemptOutcome.OK:
                    word = "REMEDIATE-FAIL" if ev.kind is AttemptKind.REMEDIATE else "FAIL"
                    self._line(ev.at, f"{word} {ev.step}{on_worker(ev.host)} {describe_failure(ev)} {log_note(ev)}")
            case AttemptPlaced():
                self._line(ev.at or time.time(), f"RUNNING {ev.step} on {ev.host} (attempt {ev.attempt})")
            case RetryScheduled():
                total = self._max.get(ev.step, ev.next_attempt)
                self._line(ev.at, f"RETRY {ev.step} attempt {ev.next_attempt}/{total} in {ev.delay:.2f}s")
            case OutputLine():
                self._line(ev.at or time.time(), f"{ev.step} | {terminal_safe(ev.line) if self._tty else ev.line}")
            case ItemStarted():
                if ev.batch:
                    self._batches[(ev.step, ev.seq)] = ev.batch
                if ev.injected:  # a line per item would drown a cron log; an injected fault is worth one (trial 17)
                    self._line(ev.at, f"START {_unit(ev.step, ev.keys, ev.batch)} (attempt {ev.attempt}, chaos: {ev.injected})")
            case ItemFinished():
                batch = self._batches.pop((ev.step, ev.seq), 0)
                if ev.status in (ItemStatus.RETRYING, ItemStatus.DEAD):
                    why = f"exit {ev.exit_code}" if ev.exit_code is not None else (ev.error or "failed")
                    dead = ", dead-lettered" if ev.status is ItemStatus.DEAD else ""
                    where = f"log: {ev.log_path}" if ev.log_path else "no output"
                    self._line(ev.at, f"FAIL {_unit(ev.step, ev.keys, batch)} {why} (attempt {ev.attempt}{dead}, {where})")
            case RunStarted():
                self._run_id = ev.run_id
                where = f", logs: {self._logs_dir}" if self._logs_dir else ""
                self._line(
                    ev.at, f"RUN {ev.pipeline}: {len(ev.steps)} steps, concurrency {ev.concurrency}{where}"
                )
            case RunFinished():
                counts = ", ".join(f"{n} {s}" for s, n in sorted(ev.counts.items()))
                self._line(ev.at, f"END {ev.status.value} in {format_duration(ev.duration)} ({counts})")


__all__ = ["PlainSink", "describe_failure", "is_worker", "log_note", "on_worker"]
