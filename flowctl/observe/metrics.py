"""The figures of one run, computed from its records: pure functions, no I/O.

Definitions (the README repeats them):

- *wall time*: the run's start to its end (or to ``now`` for a run still going).
- *execution time* of a step: its first attempt's start to its last attempt's end (retry
  back-off and remediation included, queue wait excluded). *latency*: ready to finished.
  *queue wait*: ready to the first attempt's start.
- *throughput*: steps that finished executing in this run (succeeded, failed or failed
  (allowed); not skipped, reused, up to date or cancelled) per minute of wall time.
- *error rate*: failed attempts (non-zero exit, timeout, could not start, worker lost) over attempts; a
  remediation command and an attempt that was cancelled are not attempts of the step. *step
  error rate*: steps that failed (allowed or not) over steps that ran at least one attempt.
- *queue depth*: how many steps were ready but not started; the highest value over the run is
  found by sweeping the intervals ``[ready, first start)`` (a step never started counts until it
  finished, or until the run ended). The *mean queue depth* is the same sweep weighted by time:
  the area under the depth curve over the run's wall time.
- *critical path*: the chain of ``needs`` whose execution times add up to the most; with
  unlimited concurrency the run could not have been shorter than that.
- *attempts per worker*: under ``--executor dask``, the attempts (remediation included) each
  worker ran, by its address; empty when every attempt ran on this machine.
- Percentiles interpolate linearly between the closest ranks (numpy's default, "type 7").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from flowctl.graph.walk import CycleLeft, generations
from flowctl.observe.metric_records import RunRecord, StepRecord
from flowctl.observe.plain import is_worker
from flowctl.run.events import FAILING_FAULTS as FAILING
from flowctl.run.events import AttemptKind, AttemptOutcome, RunStatus, StepStatus

if TYPE_CHECKING:
    from flowctl.observe.items import ItemFigures

_EXECUTED = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.FAILED_ALLOWED})
_FAILED_STEP = frozenset({StepStatus.FAILED, StepStatus.FAILED_ALLOWED})
_FAILED_ATTEMPT = frozenset(
    {AttemptOutcome.FAILED, AttemptOutcome.TIMEOUT, AttemptOutcome.ERROR, AttemptOutcome.LOST}
)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) of ``values`` by linear interpolation; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 50)


@dataclass(frozen=True, slots=True)
class Distribution:
    """Summary of a set of durations (seconds); every figure is None when there were none."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution:
        data = list(values)
        return cls(
            count=len(data),
            p50=percentile(data, 50),
            p95=percentile(data, 95),
            p99=percentile(data, 99),
            max=max(data) if data else None,
        )

    def to_dict(self) -> dict[str, object]:
        return {"count": self.count, "p50": self.p50, "p95": self.p95, "p99": self.p99, "max": self.max}


@dataclass(frozen=True, slots=True)
class RunMetrics:
    """Everything ``show``, the run summary, Prometheus and alerts report about one run."""

    run_id: str
    pipeline: str
    status: RunStatus
    started_at: float
    finished_at: float | None
    wall_seconds: float
    counts: Mapping[str, int]  # StepStatus.value -> number of steps
    steps_total: int
    steps_executed: int  # ran at least one attempt
    steps_completed: int  # finished executing (see throughput)
    steps_failed: int
    attempts: int
    failed_attempts: int
    retries: int  # attempts beyond each step's first (the final one after remediation included)
    remediations: int
    throughput_per_minute: float | None
    error_rate: float | None
    step_error_rate: float | None
    latency: Distribution  # ready -> finished
    execution: Distribution  # first attempt start -> last attempt end
    queue_wait: Distribution  # ready -> first attempt start
    max_queue_depth: int
    critical_path: tuple[str, ...]
    critical_path_seconds: float | None
    step_duration: Mapping[str, float] = field(default_factory=dict)  # execution time per step
    step_attempts: Mapping[str, int] = field(default_factory=dict)
    step_status: Mapping[str, StepStatus] = field(default_factory=dict)
    lateness: float | None = None  # scheduled runs: start minus the cron fire time
    mean_queue_depth: float | None = None  # time-weighted over the wall time
    worker_attempts: Mapping[str, int] = field(default_factory=dict)  # Dask worker -> attempts it ran
    #: Faults chaos injected (issue 17). Their failures count toward retries, never in
    #: ``failed_attempts`` / ``error_rate``: those are the real ones.
    injected_faults: int = 0
    chaos: bool = False  # the run ran under --chaos
    items: Mapping[str, ItemFigures] = field(default_factory=dict)  # foreach step -> its items (issue 15)

    @property
    def succeeded(self) -> bool:
        return self.status is RunStatus.SUCCEEDED

    @property
    def any_step_failed(self) -> bool:
        """A step failed for good (``failed (allowed)`` does not count)."""
        return any(s is StepStatus.FAILED for s in self.step_status.values())

    @property
    def parallel_speedup(self) -> float | None:
        """Sum of execution times over wall time: how much parallelism bought."""
        total = sum(self.step_duration.values())
        return total / self.wall_seconds if self.wall_seconds > 0 and total > 0 else None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping (``--format json``)."""
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "status": self.status.value,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "wall_seconds": self.wall_seconds,
            "counts": dict(self.counts),
            "steps": {
                "total": self.steps_total,
                "executed": self.steps_executed,
                "completed": self.steps_completed,
                "failed": self.steps_failed,
            },
            "attempts": self.attempts,
            "failed_attempts": self.failed_attempts,
            "retries": self.retries,
            "remediations": self.remediations,
            "throughput_per_minute": self.throughput_per_minute,
            "error_rate": self.error_rate,
            "step_error_rate": self.step_error_rate,
            "latency": self.latency.to_dict(),
            "execution": self.execution.to_dict(),
            "queue_wait": self.queue_wait.to_dict(),
            "max_queue_depth": self.max_queue_depth,
            "mean_queue_depth": self.mean_queue_depth,
            "critical_path": list(self.critical_path),
            "critical_path_seconds": self.critical_path_seconds,
            "lateness": self.lateness,
            "step_duration": dict(self.step_duration),
            "step_attempts": dict(self.step_attempts),
            "worker_attempts": dict(self.worker_attempts),
            "injected_faults": self.injected_faults,
            "chaos": self.chaos,
            **({"items": {step: f.to_dict() for step, f in self.items.items()}} if self.items else {}),
        }


def execution_time(step: StepRecord) -> float | None:
    """First attempt's start to the last attempt's end; None if it never ran or never ended."""
    if not step.attempts:
        return None
    ends = [a.finished_at for a in step.attempts]
    if any(end is None for end in ends):
        return None
    start = min(a.started_at for a in step.attempts)
    return max(0.0, max(e for e in ends if e is not None) - start)


def max_queue_depth(record: RunRecord, end: float) -> int:
    """The most steps that were ready but not started at one moment (intervals ``[ready, start)``)."""
    return max((depth for _, depth in _depth_steps(record, end)), default=0)


def mean_queue_depth(record: RunRecord, end: float) -> float | None:
    """The time-weighted mean of the queue depth from the run's start to ``end`` (None for a run
    with no wall time)."""
    wall = end - record.started_at
    if wall <= 0:
        return None
    area = 0.0
    at, depth = record.started_at, 0
    for moment, after in _depth_steps(record, end):
        moment = min(max(moment, record.started_at), end)
        area += depth * (moment - at)
        at, depth = moment, after
    area += depth * max(0.0, end - at)
    return area / wall


def _depth_steps(record: RunRecord, end: float) -> list[tuple[float, int]]:
    """The queue depth after each change, in time order: (moment, depth from then on)."""
    points: list[tuple[float, int]] = []
    for step in record.steps:
        if step.ready_at is None:
            continue
        until = step.started_at
        if until is None:
            until = step.finished_at if step.finished_at is not None else end
        if until > step.ready_at:
            points.append((step.ready_at, 1))
            points.append((until, -1))
    # At equal times a start (-1) goes first: a step started the moment another became ready
    # no longer waits then, and the running total never overshoots.
    points.sort()  # by time, then by delta
    depth = 0
    steps: list[tuple[float, int]] = []
    for moment, delta in points:
        depth += delta
        steps.append((moment, depth))
    return steps


@dataclass(frozen=True, slots=True)
class Samples:
    """The per-step values a run's distributions summarise, for pooling over several runs
    (``flowctl bench``); seconds, in step order."""

    latency: tuple[float, ...] = ()  # ready -> finished, steps that executed
    queue_wait: tuple[float, ...] = ()  # ready -> first attempt start


def run_samples(record: RunRecord) -> Samples:
    """The latencies and queue waits of a run's steps (see the module docstring)."""
    latencies: list[float] = []
    waits: list[float] = []
    for step in record.steps:
        started = step.started_at
        if step.ready_at is not None and started is not None:
            waits.append(max(0.0, started - step.ready_at))
            if step.finished_at is not None and step.status in _EXECUTED:
                latencies.append(max(0.0, step.finished_at - step.ready_at))
    return Samples(tuple(latencies), tuple(waits))


def critical_path(
    durations: Mapping[str, float], needs: Mapping[str, tuple[str, ...]]
) -> tuple[tuple[str, ...], float | None]:
    """The chain of ``needs`` with the largest total duration among the steps in ``durations``
    (ties: the larger step id). Linear in steps + needs."""
    if not durations or not needs:
        return (), None
    length: dict[str, float] = {}  # the longest chain ending with the step
    previous: dict[str, str | None] = {}
    of = length.__getitem__
    known = durations.__contains__
    # A run's steps come in plan order, where every need comes before the steps that need it:
    # then one pass does; else (any other order) the topological walk of graph.walk below.
    for step, took in durations.items():
        ups = needs.get(step, ())
        if ups and not all(map(length.__contains__, ups)):
            ups = tuple(filter(known, ups))
            if not all(map(length.__contains__, ups)):
                length.clear()
                previous.clear()
                break
        if ups:  # the longest chain before it; ties: the larger step id (pairs compare in C)
            best, via = max(zip(map(of, ups), ups, strict=False))
            length[step], previous[step] = best + took, via
        else:
            length[step], previous[step] = took, None
    else:
        return _chain_back(length, previous)
    steps = sorted(durations)
    inside = {s: tuple(filter(known, needs.get(s, ()))) for s in steps}
    try:
        order = generations(steps, inside)  # the run path's one topological walk
    except CycleLeft:  # a cycle cannot come from a validated pipeline; report nothing rather than guess
        return (), None
    for gen in order:
        for step in gen:
            ups = inside[step]
            if ups:
                best, via = max(zip(map(of, ups), ups, strict=False))
                length[step], previous[step] = best + durations[step], via
            else:
                length[step], previous[step] = durations[step], None
    return _chain_back(length, previous)


def _chain_back(length: Mapping[str, float], previous: Mapping[str, str | None]) -> tuple[tuple[str, ...], float | None]:
    """The chain ending with the step of the largest ``length`` (ties: the larger id)."""
    if not length:  # a cycle cannot come from a validated pipeline; report nothing rather than guess
        return (), None
    _, end = max(zip(length.values(), length, strict=False))
    chain: list[str] = []
    cursor: str | None = end
    while cursor is not None:
        chain.append(cursor)
        cursor = previous[cursor]
    return tuple(reversed(chain)), length[end]


def compute_run_metrics(record: RunRecord, *, now: float | None = None) -> RunMetrics:
    """Compute every figure of one run (see the module docstring for the definitions)."""
    end = record.finished_at if record.finished_at is not None else (now if now is not None else record.started_at)
    wall = max(0.0, end - record.started_at)
    counts: dict[str, int] = {}
    executions: list[float] = []
    durations: dict[str, float] = {}
    step_attempts: dict[str, int] = {}
    workers: dict[str, int] = {}
    attempts = failed_attempts = retries = remediations = injected = 0
    executed = completed = failed_steps = 0
    # Enum members compared by identity in tuples: a set of them would hash each through
    # Python (100,000-step runs; issue 12).
    remediate, cancelled = AttemptKind.REMEDIATE, AttemptOutcome.CANCELLED
    failed_attempt, failed_step, ran_steps = tuple(_FAILED_ATTEMPT), tuple(_FAILED_STEP), tuple(_EXECUTED)
    for step in record.steps:
        status = step.status
        value = status._value_
        counts[value] = counts.get(value, 0) + 1
        sid = step.step
        tries = step.attempts
        if not tries:
            step_attempts[sid] = 0
            rows, began = record.items.get(sid), record.items_started.get(sid)
            if rows and began is not None:  # a foreach step: its items ran, not attempts of its own
                executed += 1
                failed_steps += status in failed_step
                completed += status in ran_steps
                item_ends = [end for _, _, end in rows if end]
                if item_ends:
                    durations[sid] = max(0.0, max(item_ends) - began)
                    executions.append(durations[sid])
            continue
        regular = [a for a in tries if a.kind is not remediate]
        remediations += len(tries) - len(regular)
        for a in regular:
            if a.injected:
                injected += 1
            if a.outcome is not cancelled:
                attempts += 1
                if a.outcome in failed_attempt and a.injected not in FAILING:
                    failed_attempts += 1
        retries += max(0, len(regular) - 1)
        step_attempts[sid] = len(regular)
        for a in tries:
            if is_worker(a.host):
                workers[a.host] = workers.get(a.host, 0) + 1
        executed += 1
        if status in failed_step:
            failed_steps += 1
        ran = status in ran_steps
        if ran:
            completed += 1
        if len(tries) == 1:
            started, last = tries[0].started_at, tries[0].finished_at
            run_time = None if last is None else max(0.0, last - started)
        else:
            started = min(a.started_at for a in tries)
            ends = [a.finished_at for a in tries]
            run_time = None if None in ends else max(0.0, max(e for e in ends if e is not None) - started)
        if run_time is not None:
            durations[sid] = run_time
            executions.append(run_time)
    samples = run_samples(record)
    path, path_seconds = critical_path(durations, record.needs)
    return RunMetrics(
        run_id=record.run_id,
        pipeline=record.pipeline,
        status=record.status,
        started_at=record.started_at,
        finished_at=record.finished_at,
        wall_seconds=wall,
        counts=MappingProxyType(counts),
        steps_total=len(record.steps),
        steps_executed=executed,
        steps_completed=completed,
        steps_failed=failed_steps,
        attempts=attempts,
        failed_attempts=failed_attempts,
        retries=retries,
        remediations=remediations,
        throughput_per_minute=completed / (wall / 60.0) if wall > 0 else None,
        error_rate=failed_attempts / attempts if attempts else None,
        step_error_rate=failed_steps / executed if executed else None,
        latency=Distribution.of(samples.latency),
        execution=Distribution.of(executions),
        queue_wait=Distribution.of(samples.queue_wait),
        max_queue_depth=max_queue_depth(record, end),
        mean_queue_depth=mean_queue_depth(record, end),
        critical_path=path,
        critical_path_seconds=path_seconds,
        step_duration=MappingProxyType(durations),
        step_attempts=MappingProxyType(step_attempts),
        step_status=MappingProxyType({s.step: s.status for s in record.steps}),
        lateness=(record.started_at - record.scheduled_for) if record.scheduled_for is not None else None,
        worker_attempts=MappingProxyType(dict(sorted(workers.items()))),
        injected_faults=injected + record.item_faults,
        chaos=bool(record.chaos),
        items=_items(record),
    )


def _items(record: RunRecord) -> Mapping[str, ItemFigures]:
    if not record.items:
        return MappingProxyType({})
    from flowctl.observe.items import item_figures

    return item_figures(record.items, record.items_started, record.items_waiting, chaos_dead=record.items_chaos_dead)


__all__ = [
    "Distribution",
    "RunMetrics",
    "Samples",
    "compute_run_metrics",
    "critical_path",
    "execution_time",
    "max_queue_depth",
    "mean_queue_depth",
    "median",
    "percentile",
    "run_samples",
]
