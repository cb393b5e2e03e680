"""What a run is given and what it gives back: the scheduler's inputs and result types.

``RunOptions`` (concurrency, fail-fast, logs folder, and the hooks the
state store uses: ``reuse`` for steps that do not run — resume, up to date — and their
``fingerprints``), ``Selection`` (what ``--only``/``--from``/``--force`` chose), ``SessionPlan``
(what the state session decided: reuse, fingerprints, resumed-from, provenance), ``Reuse``,
``RunResult``, the sortable run id, and the two protocols the scheduler reads its plan and
invocations through (``graph.Plan`` and ``spec.resolve.Invocation`` satisfy them;
``InvocationLike`` is ``fingerprint``'s, one protocol for both). Kept apart from ``scheduler``
so the CLI and the state store can build these without the scheduling code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from flowctl.fingerprint import InvocationLike
from flowctl.run.events import RunId, RunStatus, StepStatus
from flowctl.spec.model import Pipeline

if TYPE_CHECKING:
    from flowctl.run.chaos import ChaosRun


class PlanLike(Protocol):
    """What the scheduler reads of ``graph.Plan``."""

    @property
    def pipeline(self) -> Pipeline: ...
    @property
    def selected(self) -> tuple[str, ...]: ...
    @property
    def priority(self) -> Mapping[str, int]: ...


def new_run_id(now: float | None = None) -> RunId:
    """A sortable run id: UTC start time to the second plus 4 random hex digits."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() if now is None else now))
    return RunId(f"{stamp}-{os.urandom(2).hex()}")


@dataclass(frozen=True, slots=True)
class Reuse:
    """A step that does not run: its earlier result stands (resume or up to date)."""

    status: StepStatus  # StepStatus.REUSED or StepStatus.UP_TO_DATE
    reason: str
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class Selection:
    """Which steps a run was asked for: ``--only``, ``--from``, ``--force`` and ``--force-step``.

    Recorded with the run (``record``) so a resume continues with the same selection and
    forcing (issue 12: kept along the chain)."""

    only: tuple[str, ...] = ()
    from_: tuple[str, ...] = ()
    force: bool = False
    force_steps: tuple[str, ...] = ()

    def record(self) -> Mapping[str, object]:
        """The JSON object stored in the run's ``selection`` column (keys as the options say)."""
        return {"only": list(self.only), "from": list(self.from_), "force": self.force,
                "force_steps": list(self.force_steps)}


@dataclass(frozen=True, slots=True)
class Carried:
    """An item as recorded (issue 15): one a replay keeps as it is, one it sends again (its
    ``replays`` then the count it will have), or one a resume reuses from the run it continues;
    its record travels along so results, logs and attempts stay whole."""

    item: str  # canonical JSON, as recorded
    status: str  # an ItemStatus value
    replays: int = 0
    attempts: int = 0
    exit_code: int | None = None
    duration: float | None = None
    error: str | None = None
    tail: tuple[str, ...] = ()
    log_path: str = ""
    first_failure: float | None = None
    last_failure: float | None = None
    batch: int = 0


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """What the state session decided before the run starts, for the scheduler's options:
    the steps not to run and why (``reuse``), every step's fingerprint, the run a resume
    continues, and the provenance the session knows (pipeline file hash, git commit, dirty)."""

    reuse: Mapping[str, Reuse] = field(default_factory=dict)
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    resumed_from: RunId | None = None
    provenance: Mapping[str, object] = field(default_factory=dict)
    fingerprint_at_start: Callable[[str], str] | None = None  # see RunOptions
    items_done: Mapping[str, Mapping[str, Carried]] = field(default_factory=dict)  # see RunOptions
    results_paths: Mapping[str, str] = field(default_factory=dict)
    #: issue 15: the recorded stdout (stdout.jsonl) of producing steps reused from earlier runs
    stdout_paths: Mapping[str, str] = field(default_factory=dict)
    items_carried: Mapping[str, Mapping[str, Carried]] = field(default_factory=dict)  # see RunOptions
    items_replayed: Mapping[str, Mapping[str, Carried]] = field(default_factory=dict)
    attempts_before: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How the scheduler runs a plan (concurrency, logs, reuse, provenance, ...)."""

    logs_dir: str  # <state>/runs/<run-id>: attempt logs go to <logs_dir>/<step>/<n>.log
    concurrency: int = 1
    fail_fast: bool = False
    stream: bool = False  # executors report output lines
    reuse: Mapping[str, Reuse] = field(default_factory=dict)  # steps not to run, and why
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    #: A step's fingerprint taken again as it first starts (its inputs as it sees them, after
    #: its upstream ran: ``state.session``); None keeps ``fingerprints``.
    fingerprint_at_start: Callable[[str], str] | None = None
    params: Mapping[str, object] = field(default_factory=dict)  # for RunStarted
    selection: Selection = Selection()
    resumed_from: RunId | None = None
    provenance: Mapping[str, object] = field(default_factory=dict)
    fire_time: float | None = None  # the cron fire time of a `run --scheduled`, for RunStarted
    handle_signals: bool = True  # install SIGINT/SIGTERM handlers (main thread only)
    #: Counting limits on step ``resources`` (``--resources gpu=1``); a name not here is
    #: unlimited. Empty for executors that place attempts by resource themselves (Dask).
    resources: Mapping[str, float] = field(default_factory=dict)
    chaos: ChaosRun | None = None  # faults to inject (issue 17, ``run/chaos.py``)
    #: issue 15: per foreach step, items that need not run again: key -> its record
    items_done: Mapping[str, Mapping[str, Carried]] = field(default_factory=dict)
    #: issue 15: the results.jsonl of foreach steps reused from earlier runs
    results_paths: Mapping[str, str] = field(default_factory=dict)
    #: issue 15: the recorded stdout (stdout.jsonl) of producing steps reused from earlier runs
    stdout_paths: Mapping[str, str] = field(default_factory=dict)
    #: `dlq replay` (in the replayed run itself): per step, the items kept as they are, and
    #: those sent again (with the replay count each will have and its attempts so far)
    items_carried: Mapping[str, Mapping[str, Carried]] = field(default_factory=dict)
    items_replayed: Mapping[str, Mapping[str, Carried]] = field(default_factory=dict)
    #: `dlq replay`: attempts each step already made in the run it continues in place, so a
    #: new attempt never takes an earlier one's number (its row, its log file)
    attempts_before: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended: its status, each step's status, counts and duration."""

    run_id: RunId
    status: RunStatus
    steps: Mapping[str, StepStatus]
    counts: Mapping[str, int]
    duration: float
    root_failure: str | None = None


__all__ = [
    "Carried",
    "InvocationLike", "PlanLike", "Reuse", "RunOptions", "RunResult", "Selection", "SessionPlan", "new_run_id",
]
