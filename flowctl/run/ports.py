"""The seams of the runner: ``Executor``, ``RunStore`` and ``EventSink`` protocols.

The scheduler depends only on these. ``run/executors/local.py`` runs attempts as local process
groups; a Dask executor plugs in behind the same ``Executor`` later, so the scheduler never
assumes an attempt runs on this machine. ``state/`` implements ``RunStore`` with SQLite;
``run/memory.py`` has the in-memory one. ``observe/`` holds the sinks. ``run`` never imports
``state`` or ``observe``: ``cli`` wires them together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from flowctl.run.events import AttemptKind, AttemptOutcome, Event, RunId


@dataclass(frozen=True, slots=True)
class AttemptKey:
    """Which attempt: run id, step id, attempt number (1-based)."""

    run_id: RunId
    step: str
    attempt: int


@dataclass(frozen=True, slots=True)
class AttemptSpec:
    """Everything needed to run one attempt somewhere: no reference to the pipeline model."""

    key: AttemptKey
    argv: tuple[str, ...]  # already resolved: ("/bin/sh", "-c", cmd) for shell commands
    env: Mapping[str, str]  # added over the executor's base environment (see ``Executor``)
    cwd: str  # absolute
    log_path: str  # absolute; made (with its folders) by the executor when output first arrives
    timeout: float | None = None
    kind: AttemptKind = AttemptKind.ATTEMPT
    secrets: tuple[str, ...] = ()  # values masked as *** in everything the attempt prints
    stream: bool = False  # also report each output line (OutputLine events)
    resources: Mapping[str, float] = field(default_factory=dict)  # the step's, sizes in bytes
    #: Non-empty: the command's stdout goes to this file (made empty at the start, unmasked: it
    #: is data, the items of a ``foreach`` that reads it), apart from its log, which keeps its
    #: stderr (issue 15: ``items_from: {step: S}``).
    stdout_path: str = ""


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """How an attempt ended, as the executor reports it."""

    key: AttemptKey
    outcome: AttemptOutcome
    exit_code: int | None
    started_at: float  # epoch seconds
    duration: float  # seconds
    host: str = ""
    error: str | None = None  # why it could not start (ERROR), or why its log could not be written
    tail: tuple[str, ...] = field(default_factory=tuple)  # last lines of the log
    logged: bool = True  # False: the attempt printed nothing, so it has no log file


class Executor(Protocol):
    """Runs attempts somewhere; the scheduler (single-threaded) submits and waits.

    What every executor guarantees (tests/run/test_executor_contract.py checks each, on every
    executor):

    * **Start.** ``submit`` starts ``spec.argv`` in the folder ``spec.cwd`` with the executor's
      base environment plus ``spec.env`` (the base is the executor's business: the runner's
      environment for the local executor, the worker's own under Dask; the scheduler only ever
      sends additions), its output (stdout and stderr, masked when ``spec.secrets``) into
      ``spec.log_path``, created with the first byte. The runner's own working folder and
      environment never change (no ``chdir``, no ``os.environ`` writes).
    * **Timeout.** ``spec.timeout`` seconds after the start, the attempt's whole process group
      (and what it left behind: ``setsid``, double forks) gets SIGTERM, then SIGKILL after the
      executor's grace period; the attempt ends TIMEOUT.
    * **Cancel.** ``cancel`` does the same to one attempt, which ends CANCELLED; an attempt not
      yet running never starts. Cancelling an attempt that already ended does nothing.
    * **Exactly one result.** Every submitted attempt comes back from ``wait`` exactly once,
      as an ``AttemptResult`` carrying its key, whatever happens: it ran, could not start
      (ERROR, with ``error`` saying why), timed out, was cancelled, or the machine running it
      went away (LOST: never silently re-run elsewhere). ``close`` ends what is still running
      and reports nothing more.
    * **Values, not processes.** Results, and the optional progress reports (``OutputLine``
      through ``on_output``, ``AttemptPlaced`` through ``on_placed`` where placement means
      something), are values keyed by ``AttemptKey``: nothing in the scheduler holds a pid, a
      process or a future, or assumes the attempt runs on this machine.
    * **Ownership.** Everything an executor uses (poller, self-pipe, caches, threads, a
      cluster client) is its own and is released by ``close``; an executor is a context
      manager and is closed by a ``with``. No process-wide state: two executors may coexist.
    * **Storage.** A log that cannot be written makes ``wait`` raise ``StorageError``.

    Optional parts: ``slots`` (``SlotsReporting``) for a capacity that changes during a run, and
    an executor-specific check for attempts a dead runner left running (the local executor's
    processes are found by ``procs.tagged_processes``; the Dask one asks the workers,
    ``DaskExecutor.orphans``), which the CLI runs before anything starts.
    """

    def submit(self, spec: AttemptSpec) -> None:
        """Start ``spec``; a failure to start comes back from ``wait`` as outcome ERROR."""

    def wait(self, timeout: float | None) -> Sequence[AttemptResult]:
        """Block until at least one attempt ended or ``timeout`` seconds passed; may return
        early with nothing (after ``wakeup``, or for the executor's own timers). Raises
        ``StorageError`` when an attempt's log could not be written (the run must stop)."""

    def wakeup(self) -> None:
        """Make a blocked ``wait`` return now; safe to call from a signal handler."""

    def cancel(self, key: AttemptKey, *, force: bool = False) -> None:
        """Stop one attempt (terminate, grace period, kill; ``force``: kill at once, as a
        fault injector does); it ends with outcome CANCELLED."""

    def cancel_all(self, *, force: bool = False) -> None:
        """Stop every running attempt; ``force`` kills at once (second Ctrl-C)."""

    def running(self) -> int:
        """How many attempts are running."""

    def close(self) -> None:
        """Release resources; kill anything still running and what it left behind. Idempotent."""

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None:
        """``close``."""


class SlotsReporting(Protocol):
    """An executor whose capacity changes during a run (an adaptive Dask cluster) also has
    ``slots``; the scheduler finds it with ``getattr`` (the local executor has none)."""

    def slots(self, backlog: int) -> int | None:
        """How many attempts may run at once now (None: no limit of its own). ``backlog`` is
        how many ready attempts wait for a slot: an adaptive executor grows with it."""


class RunStore(Protocol):
    """Where a run is checkpointed. ``record`` is called before any sink sees the event.

    The scheduler records the events of one turn of its loop (usually one attempt ending and
    the next starting), then calls ``flush`` once, then starts the turn's attempts and hands the
    events to the sinks: a store may batch everything between two ``flush`` calls into one
    transaction, and must have made it durable when ``flush`` returns (a run's ``RunStarted``
    included: the first turn's reuse decisions belong with it).
    """

    def record(self, event: Event) -> None: ...

    def flush(self) -> None:
        """Make everything recorded so far durable."""


EventSink = Callable[[Event], None]
OutputCallback = Callable[[AttemptKey, str], None]

__all__ = [
    "AttemptKey",
    "AttemptResult",
    "AttemptSpec",
    "EventSink",
    "Executor",
    "OutputCallback",
    "RunStore",
    "SlotsReporting",
]
