"""The frozen records a run's figures are computed from, and a sink that builds them from events.

``state/`` hands these to ``observe.metrics`` when it reads history (one ``RunRecord`` per run,
with its ``StepRecord``s and their ``AttemptRecord``s); ``RunRecorder`` builds the same records
from the live event stream, so the end-of-run summary needs no database. Times are epoch
seconds, durations seconds. Nothing here computes figures (``metrics.py``) or touches SQLite.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from flowctl.run.chaos import injected_only
from flowctl.run.events import (
    AttemptFinished,
    AttemptKind,
    AttemptOutcome,
    AttemptStarted,
    Event,
    ItemFinished,
    ItemStarted,
    ItemStatus,
    RunFinished,
    RunStarted,
    RunStatus,
    StepFinished,
    StepReady,
    StepStatus,
)

_NO_NEEDS: Mapping[str, tuple[str, ...]] = MappingProxyType({})
_NO_ITEMS: Mapping[str, tuple[tuple[ItemStatus, float, float], ...]] = MappingProxyType({})
_NO_STARTS: Mapping[str, float] = MappingProxyType({})
_NO_WAITING: Mapping[str, int] = MappingProxyType({})
_NO_COUNTS: Mapping[str, int] = MappingProxyType({})
_DEAD = (ItemStatus.DEAD, ItemStatus.POISONED)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt of a step (remediation included, told apart by ``kind``)."""

    attempt: int
    started_at: float
    finished_at: float | None  # None: still running, or the runner died during it
    outcome: AttemptOutcome | None  # None while running
    exit_code: int | None = None
    kind: AttemptKind = AttemptKind.ATTEMPT
    host: str = ""  # where it ran: this machine's name, or a Dask worker's address
    injected: str = ""  # the fault chaos injected (issue 17): never counted as a real failure

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step within one run: when it became ready, its attempts, how it ended."""

    step: str
    status: StepStatus
    ready_at: float | None = None  # None: it never became ready (skipped, reused, up to date)
    finished_at: float | None = None
    attempts: tuple[AttemptRecord, ...] = ()

    @property
    def started_at(self) -> float | None:
        """The start of its first attempt."""
        return min((a.started_at for a in self.attempts), default=None)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of a pipeline, as recorded."""

    run_id: str
    pipeline: str
    status: RunStatus
    started_at: float
    finished_at: float | None = None
    steps: tuple[StepRecord, ...] = ()
    needs: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _NO_NEEDS)
    scheduled_for: float | None = None  # the cron fire time, for runs started by the scheduler
    chaos: str = ""  # the run's chaos settings (issue 17); "" for a run without chaos
    #: issue 15: per foreach step, (status, duration, end) of each item's last attempt, and when its first started
    items: Mapping[str, tuple[tuple[ItemStatus, float, float], ...]] = field(default_factory=lambda: _NO_ITEMS)
    items_started: Mapping[str, float] = field(default_factory=lambda: _NO_STARTS)
    items_waiting: Mapping[str, int] = field(default_factory=lambda: _NO_WAITING)  # the most ready at once
    item_faults: int = 0  # faults chaos injected into item attempts (issue 17; a batch's once)
    #: per foreach step, its items dead-lettered only through injected faults: no real errors
    items_chaos_dead: Mapping[str, int] = field(default_factory=lambda: _NO_COUNTS)

    def step(self, step_id: str) -> StepRecord | None:
        for record in self.steps:
            if record.step == step_id:
                return record
        return None


class RunRecorder:
    """An event sink that keeps the current run as records (O(1) work per event)."""

    label = "the metrics recorder"  # how warnings name this sink

    def __init__(
        self,
        needs: Mapping[str, tuple[str, ...]] | None = None,
        scheduled_for: float | None = None,
    ) -> None:
        self._needs = MappingProxyType(dict(needs or {}))
        self._scheduled_for = scheduled_for
        self._run: RunStarted | None = None
        self._end: RunFinished | None = None
        self._order: list[str] = []
        self._ready: dict[str, float] = {}
        self._status: dict[str, StepStatus] = {}
        self._finished: dict[str, float] = {}
        self._attempts: dict[str, dict[int, AttemptRecord]] = {}
        self._items: dict[str, dict[str, tuple[ItemStatus, float, float]]] = {}
        self._items_started: dict[str, float] = {}
        self._items_waiting: dict[str, int] = {}
        self._item_faults = 0
        self._item_injected: dict[tuple[str, str], list[tuple[int, str]]] = {}  # only items chaos touched
        self._chaos_dead: dict[str, int] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._run = event
            for step in event.steps:
                self._see(step)
        elif isinstance(event, StepReady):
            self._see(event.step)
            self._ready.setdefault(event.step, event.at)
            self._status[event.step] = StepStatus.READY
        elif isinstance(event, AttemptStarted):
            self._see(event.step)
            self._status[event.step] = StepStatus.RUNNING
            self._attempts.setdefault(event.step, {})[event.attempt] = AttemptRecord(
                event.attempt, event.at, None, None, None, event.kind, injected=event.injected
            )
        elif isinstance(event, AttemptFinished):
            self._see(event.step)
            attempts = self._attempts.setdefault(event.step, {})
            started = attempts.get(event.attempt)
            start = started.started_at if started else event.at - event.duration
            attempts[event.attempt] = AttemptRecord(
                event.attempt, start, event.at, event.outcome, event.exit_code, event.kind, event.host,
                started.injected if started else "",
            )
        elif isinstance(event, StepFinished):
            self._see(event.step)
            self._status[event.step] = event.status
            self._finished[event.step] = event.at
        elif isinstance(event, ItemFinished):
            if event.status is not ItemStatus.RETRYING:
                done = self._items.setdefault(event.step, {})
                for key in event.keys:
                    done[key] = (event.status, event.duration, event.at)
                if event.status in _DEAD and self._item_injected:
                    for key in event.keys:
                        if injected_only(event.attempt, self._item_injected.get((event.step, key), ())):
                            self._chaos_dead[event.step] = self._chaos_dead.get(event.step, 0) + 1
        elif isinstance(event, ItemStarted):
            self._items_started.setdefault(event.step, event.at)
            self._items_waiting[event.step] = max(self._items_waiting.get(event.step, 0), event.waiting)
            if event.injected:
                self._item_faults += 1
                for key in event.keys:
                    self._item_injected.setdefault((event.step, key), []).append((event.attempt, event.injected))
        elif isinstance(event, RunFinished):
            self._end = event

    def _see(self, step: str) -> None:
        if step not in self._status:
            self._status[step] = StepStatus.PENDING
            self._order.append(step)

    def record(self, *, now: float | None = None) -> RunRecord:
        """The run so far (``now`` closes a run that has not finished)."""
        if self._run is None:
            raise ValueError("no run has started")
        steps = tuple(
            StepRecord(
                step=step,
                status=self._status[step],
                ready_at=self._ready.get(step),
                finished_at=self._finished.get(step),
                attempts=tuple(a for _, a in sorted(self._attempts.get(step, {}).items())),
            )
            for step in self._order
        )
        return RunRecord(
            run_id=str(self._run.run_id),
            pipeline=self._run.pipeline,
            status=self._end.status if self._end else RunStatus.RUNNING,
            started_at=self._run.at,
            finished_at=self._end.at if self._end else now,
            steps=steps,
            needs=self._needs,
            scheduled_for=self._scheduled_for,
            chaos=self._run.chaos,
            items=MappingProxyType({s: tuple(v.values()) for s, v in self._items.items()}),
            items_started=MappingProxyType(dict(self._items_started)),
            items_waiting=MappingProxyType(dict(self._items_waiting)),
            item_faults=self._item_faults,
            items_chaos_dead=MappingProxyType(dict(self._chaos_dead)),
        )


__all__ = ["AttemptRecord", "RunRecord", "RunRecorder", "StepRecord"]
