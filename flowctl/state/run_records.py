"""The frozen values history queries return: a run, its steps, their attempts, a last success.

These are what ``flowctl runs/show/logs``, resume, ``plan --explain``, metrics (observe) and
cron (schedule) read; nothing here touches SQLite (``queries.py`` builds them from rows).
Times are epoch seconds; durations seconds. Statuses are strings as stored, with enum accessors,
so rows written by a newer flowctl with a status this one does not know still load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowctl.run.events import RunStatus, StepStatus

if TYPE_CHECKING:
    from flowctl.state.items import ItemRecord

#: Step statuses that count as a success whose result later runs may reuse.
SUCCESS_STATUSES = (StepStatus.SUCCEEDED.value, StepStatus.REUSED.value, StepStatus.UP_TO_DATE.value)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt as recorded in the state database."""

    run_id: str
    step: str
    attempt: int
    kind: str
    max_attempts: int
    started_at: float | None
    finished_at: float | None
    outcome: str | None  # an AttemptOutcome value, or "interrupted"; None while running
    exit_code: int | None
    duration: float | None
    host: str
    fingerprint: str
    command: str
    log_path: str
    error: str | None
    retry_delay: float | None  # the backoff before the next attempt, when one was scheduled
    injected: str = ""  # the fault chaos injected (issue 17); "" for a real attempt


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step of a run as recorded in the state database."""

    run_id: str
    step: str
    position: int
    status: str  # a StepStatus value
    ready_at: float | None
    queue_depth: int | None
    started_at: float | None
    finished_at: float | None
    attempts: int
    duration: float | None
    exit_code: int | None
    reason: str
    fingerprint: str
    outputs: Mapping[str, str]
    attempt_records: tuple[AttemptRecord, ...] = ()

    @property
    def step_status(self) -> StepStatus | None:
        """The status as an enum (None for a status a newer flowctl wrote)."""
        try:
            return StepStatus(self.status)
        except ValueError:
            return None

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCESS_STATUSES


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as recorded in the state database."""

    run_id: str
    pipeline: str
    pipeline_path: str
    status: str  # a RunStatus value
    started_at: float
    finished_at: float | None
    duration: float | None
    steps: tuple[str, ...]  # the selection, in plan order
    params: Mapping[str, Any]
    selection: Mapping[str, Any]
    concurrency: int | None
    resumed_from: str | None
    provenance: Mapping[str, Any]
    counts: Mapping[str, int]  # StepStatus value -> number of steps
    root_failure: str | None
    host: str
    pid: int | None
    fire_time: float | None  # when cron fired it (scheduled runs)
    chaos: str = ""  # the chaos settings it ran with (issue 17), canonical text

    @property
    def run_status(self) -> RunStatus | None:
        """The status as an enum (None for a status a newer flowctl wrote)."""
        try:
            return RunStatus(self.status)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class RunDetail:
    """A run with its steps and their attempts, and the items of its foreach steps (issue 15:
    every reader gets them with the run, none queries them again)."""

    run: RunRecord
    steps: tuple[StepRecord, ...] = field(default_factory=tuple)
    items: tuple[ItemRecord, ...] = field(default_factory=tuple)
    _by_id: Mapping[str, StepRecord] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {s.step: s for s in self.steps})

    def step(self, step_id: str) -> StepRecord | None:
        return self._by_id.get(step_id)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """How one step of a run ended, as far as resuming that run needs it (``resumed_run``)."""

    run_id: str
    step: str
    status: str  # a StepStatus value
    fingerprint: str
    outputs: Mapping[str, str]

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCESS_STATUSES


@dataclass(frozen=True, slots=True)
class ResumedRun:
    """The run ``--resume`` continues, with how each of its steps ended: what deciding a resume
    reads (four columns of ``steps``, not ``RunDetail``'s fourteen and the attempts: a no-op
    resume of 100,000 steps reads them all, issue 12)."""

    run: RunRecord
    outcomes: Mapping[str, StepOutcome]  # by step id

    def step(self, step_id: str) -> StepOutcome | None:
        return self.outcomes.get(step_id)


@dataclass(frozen=True, slots=True)
class LastSuccess:
    """The most recent success of a step across runs of a pipeline (for up-to-date checks)."""

    step: str
    run_id: str
    fingerprint: str
    outputs: Mapping[str, str]  # path -> content hash at the time
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class StoredFingerprint:
    """A recorded fingerprint: its parts, and the scheme and key that made it (a record from
    another scheme or key is never compared with a current fingerprint)."""

    digest: str
    parts: Mapping[str, str]
    scheme: int = 1  # fingerprint.SCHEME when it was stored; 1 for rows older than the column
    key_id: str = ""  # FingerprintKey.id ("" under scheme 1: no key)


def loads(text: str | None, default: Any) -> Any:
    """Decode a JSON column, falling back to ``default`` for empty or damaged text."""
    if not text:
        return default
    if text == "{}":  # most steps have no outputs: no decoder for them (issue 12)
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return default


__all__ = [
    "SUCCESS_STATUSES",
    "AttemptRecord",
    "LastSuccess",
    "ResumedRun",
    "RunDetail",
    "RunRecord",
    "StepOutcome",
    "StepRecord",
    "StoredFingerprint",
    "loads",
]
