"""The figures of a benchmark: per execution, and aggregated over the measured executions.

Pure functions over ``RunSample``s. Every per-run figure comes from the run's recorded metrics
(``observe.metrics``: one implementation of latency, queue wait, queue depth, error rate and the
critical path) plus the wall time the benchmark measured around the ``flowctl run`` process.
Definitions beyond ``observe.metrics``:

- *wall time*: the ``flowctl run`` process, from spawn to exit (start-up included: what a user
  waits for). *throughput*: steps that finished executing per second of wall time; aggregated,
  all executions' steps over the time at least one execution was running (the union of their
  spawn-to-exit intervals: the benchmark's own work between executions, such as making the next
  working copy, is left out), so it is the rate the machine sustained under ``--parallel N``.
- *runner overhead*: wall time minus the critical path's time (what the run could not have been
  shorter than), i.e. start-up, scheduling and bookkeeping.
- Aggregated *step latency* and *queue wait* percentiles pool every step of every execution (as
  k6 pools every request); *max queue depth* is the highest of any execution, *mean queue depth*
  the mean over executions; *error rate* pools the attempts; *retries* add up.
- ``per_run`` summarises each per-run figure over the executions (mean, sample standard
  deviation, median, min, max): ``--compare`` judges changes by them.

``subjects`` is the value of every ``--threshold`` subject (``spec.alerts.THRESHOLDS``), keyed as
``AlertRule.key`` names it, and is exported so a later ``Nx baseline`` can read it back.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from flowctl.observe.metrics import Distribution, RunMetrics, Samples, median
from flowctl.run.events import RunStatus, StepStatus
from flowctl.spec.alerts import Subject

_FAILED_STEP = frozenset({StepStatus.FAILED, StepStatus.FAILED_ALLOWED})


@dataclass(frozen=True, slots=True)
class RunSample:
    """One measured ``flowctl run``: the process as timed from outside, the run as recorded."""

    index: int  # 1-based, in the order the executions started
    exit_code: int
    started_at: float  # the process's spawn, epoch seconds
    finished_at: float  # its exit
    wall_seconds: float  # monotonic spawn to exit
    metrics: RunMetrics  # the recorded run's figures
    samples: Samples  # its steps' latencies and queue waits (for pooling)
    state_dir: str | None = None  # where its state was kept (--keep-state)

    @property
    def throughput(self) -> float | None:
        """Steps that finished executing per second of wall time."""
        return self.metrics.steps_completed / self.wall_seconds if self.wall_seconds > 0 else None

    @property
    def overhead(self) -> float:
        """Wall time minus the critical path's time."""
        return max(0.0, self.wall_seconds - (self.metrics.critical_path_seconds or 0.0))


@dataclass(frozen=True, slots=True)
class Figure:
    """A per-run figure: how to read it, how to show it, and which way is better."""

    key: str
    label: str
    unit: str  # "time" (seconds), "rate" (a fraction), "count", "number" or "per_second"
    better: str  # "lower" or "higher"
    read: Callable[[RunSample], float | None]

    @property
    def resolution(self) -> float:
        """The smallest change worth calling one: a millisecond for times (below that a busy
        machine's scheduling decides), a hundredth of a step for the mean queue depth."""
        return _RESOLUTION.get(self.unit, 0.0)


_RESOLUTION = {"time": 0.001, "number": 0.01}


def _opt(value: float | None) -> float | None:
    return None if value is None else float(value)


FIGURES: tuple[Figure, ...] = (
    Figure("wall", "wall time", "time", "lower", lambda s: s.wall_seconds),
    Figure("throughput", "throughput", "per_second", "higher", lambda s: s.throughput),
    Figure("latency_p50", "step latency p50", "time", "lower", lambda s: s.metrics.latency.p50),
    Figure("latency_p95", "step latency p95", "time", "lower", lambda s: s.metrics.latency.p95),
    Figure("latency_p99", "step latency p99", "time", "lower", lambda s: s.metrics.latency.p99),
    Figure("queue_wait_p50", "queue wait p50", "time", "lower", lambda s: s.metrics.queue_wait.p50),
    Figure("queue_wait_p99", "queue wait p99", "time", "lower", lambda s: s.metrics.queue_wait.p99),
    Figure("queue_depth_max", "max queue depth", "count", "lower", lambda s: _opt(s.metrics.max_queue_depth)),
    Figure("queue_depth_mean", "mean queue depth", "number", "lower", lambda s: s.metrics.mean_queue_depth),
    Figure("error_rate", "error rate", "rate", "lower", lambda s: s.metrics.error_rate),
    Figure("retries", "retries", "count", "lower", lambda s: _opt(s.metrics.retries)),
    Figure("overhead", "runner overhead", "time", "lower", lambda s: s.overhead),
)


@dataclass(frozen=True, slots=True)
class Summary:
    """A figure over several executions; every value None when there was none."""

    count: int = 0
    mean: float | None = None
    sd: float | None = None  # sample standard deviation; None below 2 values
    median: float | None = None
    min: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Summary:
        data = [v for v in values if v is not None and math.isfinite(v)]
        if not data:
            return cls()
        return cls(
            count=len(data),
            mean=statistics.fmean(data),
            sd=statistics.stdev(data) if len(data) > 1 else None,
            median=median(data),
            min=min(data),
            max=max(data),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "count": self.count, "mean": self.mean, "sd": self.sd, "median": self.median,
            "min": self.min, "max": self.max,
        }


@dataclass(frozen=True, slots=True)
class StepFigures:
    """One step over the executions."""

    duration: Summary  # execution time (first attempt's start to last attempt's end)
    attempts_max: int
    failed_runs: int

    def to_dict(self) -> dict[str, object]:
        return {"duration": self.duration.to_dict(), "attempts_max": self.attempts_max, "failed_runs": self.failed_runs}


@dataclass(frozen=True, slots=True)
class Aggregate:
    """Every figure over the measured executions (see the module docstring)."""

    runs: int
    failed_runs: int  # executions whose run did not succeed
    elapsed_seconds: float  # first spawn to last exit
    busy_seconds: float  # while at least one execution ran
    steps_completed: int
    attempts: int
    failed_attempts: int
    retries: int
    throughput: float | None
    latency: Distribution
    queue_wait: Distribution
    queue_depth_max: int
    queue_depth_mean: float | None
    error_rate: float | None
    step_error_rate: float | None
    per_run: Mapping[str, Summary]
    steps: Mapping[str, StepFigures]
    injected_faults: int = 0  # --chaos: faults injected over every execution (not in error_rate)

    @property
    def subjects(self) -> dict[str, float | None]:
        """Every threshold subject's value (``subject_values``)."""
        return subject_values(self)

    @property
    def wall(self) -> Summary:
        return self.per_run["wall"]

    @property
    def overhead(self) -> Summary:
        return self.per_run["overhead"]

    def to_dict(self) -> dict[str, object]:
        return {
            "runs": self.runs,
            "failed_runs": self.failed_runs,
            "elapsed_seconds": self.elapsed_seconds,
            "busy_seconds": self.busy_seconds,
            "steps_completed": self.steps_completed,
            "attempts": self.attempts,
            "failed_attempts": self.failed_attempts,
            "retries": self.retries,
            "throughput": self.throughput,
            "latency": self.latency.to_dict(),
            "queue_wait": self.queue_wait.to_dict(),
            "queue_depth": {"max": self.queue_depth_max, "mean": self.queue_depth_mean},
            "error_rate": self.error_rate,
            "step_error_rate": self.step_error_rate,
            "per_run": {key: summary.to_dict() for key, summary in self.per_run.items()},
            "steps": {step: figures.to_dict() for step, figures in self.steps.items()},
            "subjects": self.subjects,
            "injected_faults": self.injected_faults,
        }


def run_figures(sample: RunSample) -> dict[str, float | None]:
    """Every per-run figure of one execution, keyed as ``FIGURES``."""
    return {figure.key: figure.read(sample) for figure in FIGURES}


def _steps(samples: Sequence[RunSample]) -> dict[str, StepFigures]:
    order: dict[str, None] = {}
    for s in samples:
        order.update(dict.fromkeys(s.metrics.step_status))
    return {
        step: StepFigures(
            duration=Summary.of(s.metrics.step_duration.get(step) for s in samples),
            attempts_max=max((s.metrics.step_attempts.get(step, 0) for s in samples), default=0),
            failed_runs=sum(1 for s in samples if s.metrics.step_status.get(step) in _FAILED_STEP),
        )
        for step in order
    }


def aggregate(samples: Sequence[RunSample]) -> Aggregate:
    """The figures over ``samples`` (the measured executions, warm-up left out)."""
    attempts = sum(s.metrics.attempts for s in samples)
    failed_attempts = sum(s.metrics.failed_attempts for s in samples)
    executed = sum(s.metrics.steps_executed for s in samples)
    failed_steps = sum(s.metrics.steps_failed for s in samples)
    completed = sum(s.metrics.steps_completed for s in samples)
    elapsed = (max(s.finished_at for s in samples) - min(s.started_at for s in samples)) if samples else 0.0
    busy = _covered([(s.started_at, s.finished_at) for s in samples])
    per_run = {f.key: Summary.of(f.read(s) for s in samples) for f in FIGURES}
    depths = [s.metrics.mean_queue_depth for s in samples if s.metrics.mean_queue_depth is not None]
    return Aggregate(
        runs=len(samples),
        failed_runs=sum(1 for s in samples if s.metrics.status is not RunStatus.SUCCEEDED),
        elapsed_seconds=max(0.0, elapsed),
        busy_seconds=busy,
        steps_completed=completed,
        attempts=attempts,
        failed_attempts=failed_attempts,
        retries=sum(s.metrics.retries for s in samples),
        throughput=completed / busy if busy > 0 else None,
        latency=Distribution.of(v for s in samples for v in s.samples.latency),
        queue_wait=Distribution.of(v for s in samples for v in s.samples.queue_wait),
        queue_depth_max=max((s.metrics.max_queue_depth for s in samples), default=0),
        queue_depth_mean=statistics.fmean(depths) if depths else None,
        error_rate=failed_attempts / attempts if attempts else None,
        step_error_rate=failed_steps / executed if executed else None,
        per_run=MappingProxyType(per_run),
        steps=MappingProxyType(_steps(samples)),
        injected_faults=sum(s.metrics.injected_faults for s in samples),
    )


def _covered(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of ``intervals``."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def subject_values(agg: Aggregate) -> dict[str, float | None]:
    """The value of every threshold subject (``AlertRule.key`` names) in ``agg``."""
    wall = agg.per_run["wall"]
    values: dict[str, float | None] = {
        Subject.ERROR_RATE.value: agg.error_rate,
        Subject.STEP_ERROR_RATE.value: agg.step_error_rate,
        Subject.DURATION.value: wall.mean,
        Subject.WALL_MEDIAN.value: wall.median,
        Subject.WALL_MIN.value: wall.min,
        Subject.WALL_MAX.value: wall.max,
        Subject.STEP_LATENCY_P50.value: agg.latency.p50,
        Subject.STEP_LATENCY_P95.value: agg.latency.p95,
        Subject.STEP_LATENCY_P99.value: agg.latency.p99,
        Subject.QUEUE_WAIT_P50.value: agg.queue_wait.p50,
        Subject.QUEUE_WAIT_P99.value: agg.queue_wait.p99,
        Subject.QUEUE_DEPTH_MAX.value: float(agg.queue_depth_max) if agg.runs else None,
        Subject.QUEUE_DEPTH_MEAN.value: agg.queue_depth_mean,
        Subject.THROUGHPUT.value: agg.throughput,
        Subject.RETRIES.value: float(agg.retries) if agg.runs else None,
        Subject.OVERHEAD.value: agg.per_run["overhead"].mean,
    }
    for step, figures in agg.steps.items():
        values[f"step.{step}.duration"] = figures.duration.mean
        values[f"step.{step}.attempts"] = float(figures.attempts_max)
    return values


def figure(key: str) -> Figure:
    """The figure named ``key`` (KeyError for an unknown one)."""
    return _BY_KEY[key]


_BY_KEY: Mapping[str, Figure] = MappingProxyType({f.key: f for f in FIGURES})

__all__ = [
    "FIGURES",
    "Aggregate",
    "Figure",
    "RunSample",
    "StepFigures",
    "Summary",
    "aggregate",
    "figure",
    "run_figures",
    "subject_values",
]
