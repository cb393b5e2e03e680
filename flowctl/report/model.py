"""What a report shows, as frozen values: the run's header, its steps with their attempt rows,
the baseline comparison, and the history page's runs and per-step trends.

``gather.py`` builds these from state records; ``layout.py`` turns them into geometry and
``render.py`` into HTML. Nothing here reads state or formats HTML. Times are epoch seconds,
durations seconds; statuses and outcomes are the strings the state database holds, so a
status written by a newer flowctl is still shown (as itself) rather than dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowctl.observe.metrics import RunMetrics
    from flowctl.observe.trends import PipelineStats
    from flowctl.state.items import ItemRecord, ItemsSummary

_NO_COUNTS: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One attempt of a step: the unit the Gantt draws.

    ``waited_from`` is when the attempt could have started (the step became ready, or the
    previous attempt's back-off ended): the queued segment runs from there to ``started_at``.
    ``backoff_from``/``backoff`` are the retry back-off after the previous attempt.
    """

    attempt: int  # the try number, as recorded (1-based; a remediation counts as one)
    kind: str  # attempt | remediate | final
    started_at: float
    finished_at: float | None  # None: still running, or the runner died during it
    outcome: str  # ok | failed | timeout | cancelled | error | interrupted | running
    exit_code: int | None = None
    error: str | None = None  # why it could not start, or why its log could not be written
    waited_from: float | None = None
    backoff_from: float | None = None
    backoff: float | None = None


@dataclass(frozen=True, slots=True)
class ItemGroup:
    """A foreach step's items (issue 15), grouped: ``show``'s summary (counts per status, the
    slowest and failed items, rates) and the span the items ran in. Keys and values are masked."""

    summary: ItemsSummary
    started_at: float | None  # the first item's start
    finished_at: float | None  # the last item's end


@dataclass(frozen=True, slots=True)
class StepView:
    """One step of the run, with everything every section of the page says about it."""

    step: str
    status: str  # a StepStatus value
    description: str | None = None
    needs: tuple[str, ...] = ()  # within the run's selection
    level: int = 0  # its column in the DAG (the plan's levels)
    ready_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None  # execution time (observe.metrics.execution_time)
    share: float | None = None  # duration over the run's wall time
    attempts: tuple[AttemptRow, ...] = ()
    exit_code: int | None = None
    reason: str = ""
    critical: bool = False  # on the run's critical path
    baseline: float | None = None
    delta: float | None = None  # (duration - baseline) / baseline
    slower: bool = False  # past the threshold ``stats`` uses (observe.trends.is_slower)
    log_tail: tuple[str, ...] = ()  # failures only: the last lines of the last attempt's log (masked at write time)
    items: ItemGroup | None = None  # a foreach step's items; None for a plain step


@dataclass(frozen=True, slots=True)
class Header:
    """The run's identity: what ran, from which version, when, and how it ended."""

    pipeline: str
    run_id: str
    status: str
    started_at: float
    finished_at: float | None
    wall_seconds: float
    release: str | None = None  # the git ref a `run --ref` ran (a release tag, usually)
    commit: str | None = None
    dirty: bool | None = None
    chaos_seed: str | None = None  # shown only when the run recorded one (issue 17)
    resumed_from: str | None = None
    root_failure: str | None = None
    params: tuple[tuple[str, str], ...] = ()
    counts: Mapping[str, int] = field(default_factory=lambda: _NO_COUNTS)


@dataclass(frozen=True, slots=True)
class RunReport:
    """Everything one run's page shows."""

    header: Header
    steps: tuple[StepView, ...]  # in plan order
    metrics: RunMetrics
    baseline: str  # what the durations were compared with, in words
    levels: tuple[tuple[str, ...], ...]  # the plan's levels over the run's steps
    failures: tuple[str, ...]  # failed steps, the first to fail first
    notes: tuple[str, ...] = ()  # what the page could not show, and why
    dead_letters: tuple[ItemRecord, ...] = ()  # dead-lettered and poisoned items, at most DEAD_SHOWN
    dead_total: int = 0  # how many there are in all
    generated_at: float | None = None  # only with --timestamp: the same run gives the same bytes

    def step(self, step_id: str) -> StepView | None:
        return next((s for s in self.steps if s.step == step_id), None)


@dataclass(frozen=True, slots=True)
class HistoryRun:
    """One run on the history page."""

    run_id: str
    status: str
    started_at: float
    wall_seconds: float | None  # None while it runs


@dataclass(frozen=True, slots=True)
class StepTrend:
    """A step across the history page's runs (oldest first)."""

    step: str
    durations: tuple[float | None, ...]  # one per run; None where it did not execute
    p50: float | None
    p95: float | None
    rolling_p50: tuple[float | None, ...]  # over the last ``window`` executions up to each run
    rolling_p95: tuple[float | None, ...]
    runs: int  # runs that executed it
    retries: int  # attempts beyond the first, over all runs
    runs_with_retries: int
    failed_runs: int


@dataclass(frozen=True, slots=True)
class HistoryReport:
    """The history page of one pipeline."""

    pipeline: str
    runs: tuple[HistoryRun, ...]  # oldest first
    stats: PipelineStats
    steps: tuple[StepTrend, ...]
    window: int  # runs in each rolling percentile
    generated_at: float | None = None

    @property
    def flakiest(self) -> tuple[StepTrend, ...]:
        """Steps that needed retries, most retries first."""
        flaky = [s for s in self.steps if s.retries]
        return tuple(sorted(flaky, key=lambda s: (-s.retries, -s.runs_with_retries, s.step)))


__all__ = ["AttemptRow", "Header", "HistoryReport", "HistoryRun", "ItemGroup", "RunReport", "StepTrend", "StepView"]
