"""Events the scheduler emits: frozen values with the run id and a wall-clock time.

The scheduler never prints. It hands each event first to the ``RunStore`` (a checkpoint) and
then to the event sinks (``observe/``: rich live view, plain lines, JSON log, metrics). Times are
seconds since the epoch (``time.time()``); durations are seconds (from ``time.monotonic()``).
Add fields only with defaults, so every sink and store keeps working.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NewType

RunId = NewType("RunId", str)


class StepStatus(enum.Enum):
    """Where a step is, or how it ended, within one run."""

    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    FAILED_ALLOWED = "failed (allowed)"  # failed under continue_on_error
    SKIPPED = "skipped"  # an upstream step failed for good
    CANCELLED = "cancelled"  # Ctrl-C, SIGTERM or --fail-fast stopped it
    INTERRUPTED = "interrupted"  # the runner died while it ran (recorded by resume)
    REUSED = "reused"  # resume: succeeded before with the same fingerprint
    UP_TO_DATE = "up to date"  # outputs exist and match the last success

    @property
    def done_ok(self) -> bool:
        """Steps that need this one may run."""
        return self in _OK


_OK = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED_ALLOWED, StepStatus.REUSED, StepStatus.UP_TO_DATE})


#: Injected faults (``AttemptStarted.injected``, issue 17) that make the attempt fail; a ``delay``
#: does not: a delayed attempt's failure is its own.
FAILING_FAULTS = frozenset({"kill-runner", "kill-worker", "fail", "hang", "kill"})


class RunStatus(enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class AttemptKind(enum.Enum):
    ATTEMPT = "attempt"  # a regular attempt (first or retry)
    REMEDIATE = "remediate"  # the step's remediate command
    FINAL = "final"  # the one last attempt after remediation


class AttemptOutcome(enum.Enum):
    OK = "ok"
    FAILED = "failed"  # non-zero exit
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    ERROR = "error"  # could not start (command not found, bad cwd)
    LOST = "worker-lost"  # the machine or worker running it went away (never silently re-run)


@dataclass(frozen=True, slots=True)
class RunStarted:
    """A run started: its selected steps, parameters, selection and provenance."""

    run_id: RunId
    pipeline: str
    at: float
    steps: tuple[str, ...]  # the selected steps, in plan order
    params: Mapping[str, object] = field(default_factory=dict)
    selection: Mapping[str, object] = field(default_factory=dict)  # only/from/force as given
    concurrency: int = 1
    pipeline_path: str = ""
    resumed_from: RunId | None = None
    provenance: Mapping[str, object] = field(default_factory=dict)  # file hash, commit, dirty
    fire_time: float | None = None  # the cron fire time of a `run --scheduled` (for lateness)
    chaos: str = ""  # the chaos settings (issue 17), canonical text; "" without chaos


@dataclass(frozen=True, slots=True)
class StepReady:
    """Everything a step needs has ended well: it waits for a concurrency slot."""

    run_id: RunId
    step: str
    at: float
    queue_depth: int = 0  # ready-but-not-started steps, this one included


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    """An attempt (or a remediation, or the final attempt after it) started."""

    run_id: RunId
    step: str
    attempt: int  # 1-based, counting every attempt of the step (remediation included)
    at: float
    max_attempts: int = 1
    kind: AttemptKind = AttemptKind.ATTEMPT
    command: str = ""  # for display: values filled in, secrets masked
    fingerprint: str = ""
    host: str = ""
    log_path: str = ""
    injected: str = ""  # the fault chaos injected into it (issue 17): "fail", "kill", ...; "" for none


@dataclass(frozen=True, slots=True)
class AttemptPlaced:
    """An attempt started on a remote worker (``--executor dask``): where it runs. For the
    sinks only, like ``OutputLine``: the worker is recorded with the attempt's result."""

    run_id: RunId
    step: str
    attempt: int
    host: str  # the worker's address
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class AttemptFinished:
    """An attempt ended (ok, failed, timed out, cancelled or could not start)."""

    run_id: RunId
    step: str
    attempt: int
    at: float
    outcome: AttemptOutcome
    exit_code: int | None = None
    duration: float = 0.0
    kind: AttemptKind = AttemptKind.ATTEMPT
    log_path: str = ""  # "" when the attempt printed nothing: it has no log file
    error: str | None = None  # why it could not start (outcome ERROR), or why its log could not be written
    tail: tuple[str, ...] = ()  # last lines of the log, for failures
    host: str = ""  # where it ran (the executor's answer)


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    """A failed attempt will be retried after ``delay`` seconds."""

    run_id: RunId
    step: str
    next_attempt: int
    delay: float
    at: float


@dataclass(frozen=True, slots=True)
class StepFinished:
    """A step reached its final status (succeeded, failed, skipped, reused, ...)."""

    run_id: RunId
    step: str
    status: StepStatus
    at: float
    attempts: int = 0
    duration: float = 0.0  # from the first attempt's start to the last one's end
    reason: str = ""  # e.g. "upstream extract failed", "fingerprint unchanged"
    fingerprint: str = ""
    exit_code: int | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)  # output path -> content hash


@dataclass(frozen=True, slots=True)
class OutputLine:
    """A line a step printed (only emitted with ``--stream``)."""

    run_id: RunId
    step: str
    attempt: int
    line: str
    at: float = 0.0


class ItemStatus(enum.Enum):
    """Where an item (or each item of a batch) of a ``foreach`` step is (issue 15)."""

    RUNNING = "running"
    RETRYING = "retrying"  # failed an attempt; another follows
    SUCCEEDED = "succeeded"
    DEAD = "dead-lettered"  # failed its last attempt: kept in the dead-letter queue
    CANCELLED = "cancelled"  # never started, or stopped, once the step stopped
    REUSED = "reused"  # succeeded in the run this one resumes
    POISONED = "poisoned"  # dead-lettered and replayed too often: refused without --force
    DROPPED = "dropped"  # taken out of the dead-letter queue by `dlq drop`, kept for audit
    INTERRUPTED = "interrupted"  # the runner died while it ran (recorded by the next run)


@dataclass(frozen=True, slots=True)
class ItemStarted:
    """An attempt of one item (or of one batch: ``keys`` holds each of its items) started."""

    run_id: RunId
    step: str
    keys: tuple[str, ...]
    items: tuple[str, ...]  # canonical JSON, one per key
    attempt: int  # of this item (or batch), 1-based
    seq: int  # the attempt number the executor knows it by (unique within the step)
    at: float
    batch: int = 0  # 1-based batch number; 0: not batched
    log_path: str = ""
    replays: int = 0  # how often `flowctl dlq replay` sent these items again
    waiting: int = 0  # units (items, or batches) of the step ready and waiting for a slot as it started
    injected: str = ""  # the fault chaos injected into this attempt (issue 17: items are attempts too)


@dataclass(frozen=True, slots=True)
class ItemFinished:
    """An attempt of an item (or batch) ended, or an item was settled without one (reused,
    cancelled before it started: ``attempt`` 0)."""

    run_id: RunId
    step: str
    keys: tuple[str, ...]
    status: ItemStatus
    at: float
    attempt: int = 0
    seq: int = 0
    exit_code: int | None = None
    duration: float = 0.0
    error: str | None = None
    tail: tuple[str, ...] = ()  # last lines of the log (secrets masked), for failures
    items: tuple[str, ...] = ()  # canonical JSON, given when no ItemStarted came first (reused)
    log_path: str = ""
    replays: int = 0
    kept: bool = False  # `dlq replay`: an item of the run it continues, left as it was: its row stands


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The run ended; ``counts`` by step status, ``root_failure`` the first step that failed for good."""

    run_id: RunId
    at: float
    status: RunStatus
    duration: float = 0.0
    counts: Mapping[str, int] = field(default_factory=dict)  # StepStatus.value -> count
    root_failure: str | None = None  # the first step that failed for good


Event = (
    RunStarted
    | StepReady
    | AttemptStarted
    | AttemptPlaced
    | AttemptFinished
    | RetryScheduled
    | StepFinished
    | OutputLine
    | RunFinished
    | ItemStarted
    | ItemFinished
)

__all__ = [
    "FAILING_FAULTS",
    "AttemptFinished",
    "AttemptKind",
    "AttemptOutcome",
    "AttemptPlaced",
    "AttemptStarted",
    "Event",
    "ItemFinished",
    "ItemStarted",
    "ItemStatus",
    "OutputLine",
    "RetryScheduled",
    "RunFinished",
    "RunId",
    "RunStarted",
    "RunStatus",
    "StepFinished",
    "StepReady",
    "StepStatus",
]
