"""Figures across runs of one pipeline (``flowctl stats``): pure functions over ``RunMetrics``.

Runs come newest first. The success rate counts finished runs; run duration percentiles count
the runs that succeeded (a failed, cancelled or interrupted run stops early, and a run still
going has no duration yet). Lateness is the start minus the cron fire time, for runs the
scheduler started. Per step, over its executions that succeeded (its first attempt's start to
its last attempt's end; a cancelled or interrupted execution is no measure of how long the step
takes): its median and p99 time, its latest time and whether that was slower than
``SLOWER_FACTOR`` times its baseline (the median over its previous 10 successful executions,
chaos runs left out);
and over every run that executed it, how often it failed (for good or under
``continue_on_error``).

Steps are those of the pipeline's current definition, in its order, when the caller knows it;
steps recorded in older runs that it no longer has are kept apart (``removed``) and left out of
"slowest", "most failing" and "slower than baseline".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flowctl.observe.metrics import Distribution, RunMetrics, median, percentile
from flowctl.run.events import RunStatus, StepStatus

SLOWER_FACTOR = 1.5
BASELINE_RUNS = 10


def is_slower(duration: float | None, baseline: float | None) -> bool:
    """The one threshold for "slower than its baseline" (``stats`` and ``report`` flag with it):
    more than ``SLOWER_FACTOR`` times a positive baseline."""
    return duration is not None and baseline is not None and baseline > 0 and duration > SLOWER_FACTOR * baseline


@dataclass(frozen=True, slots=True)
class StepStats:
    step: str
    runs: int  # runs in which it executed
    p50: float | None  # over its executions that succeeded
    p99: float | None
    failed_runs: int
    attempts: int
    latest: float | None  # its time in the newest run where it succeeded
    baseline: float | None  # median over its previous successful executions

    @property
    def failure_rate(self) -> float | None:
        return self.failed_runs / self.runs if self.runs else None

    @property
    def slower(self) -> bool:
        return is_slower(self.latest, self.baseline)

    def to_dict(self) -> dict[str, object]:
        return {
            "step": self.step,
            "runs": self.runs,
            "p50": self.p50,
            "p99": self.p99,
            "failed_runs": self.failed_runs,
            "failure_rate": self.failure_rate,
            "attempts": self.attempts,
            "latest": self.latest,
            "baseline": self.baseline,
            "slower_than_baseline": self.slower,
        }


@dataclass(frozen=True, slots=True)
class PipelineStats:
    pipeline: str
    runs: int
    finished: int
    succeeded: int
    duration: Distribution
    lateness: Distribution
    steps: tuple[StepStats, ...]  # the current definition's, in its order (see the module docstring)
    durations: tuple[float, ...]  # finished runs' wall times, oldest first (for a sparkline)
    statuses: tuple[RunStatus, ...]  # oldest first
    removed: tuple[StepStats, ...] = ()  # recorded steps the current definition no longer has

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.finished if self.finished else None

    @property
    def slowest(self) -> StepStats | None:
        timed = [s for s in self.steps if s.p50 is not None]
        return max(timed, key=lambda s: (s.p50 or 0.0, s.step), default=None)

    @property
    def most_failing(self) -> StepStats | None:
        failing = [s for s in self.steps if s.failed_runs]
        return max(failing, key=lambda s: (s.failure_rate or 0.0, s.failed_runs, s.step), default=None)

    @property
    def slower_than_baseline(self) -> tuple[StepStats, ...]:
        return tuple(s for s in self.steps if s.slower)

    def to_dict(self) -> dict[str, object]:
        slowest, failing = self.slowest, self.most_failing
        return {
            "pipeline": self.pipeline,
            "runs": self.runs,
            "finished": self.finished,
            "succeeded": self.succeeded,
            "success_rate": self.success_rate,
            "duration": self.duration.to_dict(),
            "lateness": self.lateness.to_dict(),
            "slowest_step": slowest.step if slowest else None,
            "most_failing_step": failing.step if failing else None,
            "slower_than_baseline": [s.step for s in self.slower_than_baseline],
            "steps": [s.to_dict() for s in self.steps],
            "removed_steps": [s.to_dict() for s in self.removed],
            "durations": list(self.durations),
        }


_FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.INTERRUPTED})
_FAILED = frozenset({StepStatus.FAILED, StepStatus.FAILED_ALLOWED})


def _step_stats(step: str, runs: Sequence[RunMetrics]) -> StepStats:
    executed = [r for r in runs if r.step_attempts.get(step)]
    ok = [r for r in runs if r.step_status.get(step) is StepStatus.SUCCEEDED and step in r.step_duration]
    succeeded = [r.step_duration[step] for r in ok]
    # the baseline: earlier successes, chaos runs left out (issue 17: injected faults never shift it)
    earlier = [r.step_duration[step] for r in ok[1:] if not r.chaos]
    return StepStats(
        step=step,
        runs=len(executed),
        p50=median(succeeded),
        p99=percentile(succeeded, 99),
        failed_runs=sum(1 for r in executed if r.step_status.get(step) in _FAILED),
        attempts=sum(r.step_attempts.get(step, 0) for r in runs),
        latest=succeeded[0] if succeeded else None,
        baseline=median(earlier[:BASELINE_RUNS]),
    )


def pipeline_stats(pipeline: str, runs: Sequence[RunMetrics], steps: Sequence[str] | None = None) -> PipelineStats:
    """Summarize ``runs`` (newest first) of one pipeline. ``steps``: the step ids of its current
    definition in order (None when unknown: every recorded step counts, newest run's first)."""
    finished = [r for r in runs if r.status in _FINISHED]
    order: dict[str, None] = dict.fromkeys(steps or ())
    for run in runs:
        for step in run.step_status:
            order.setdefault(step, None)
    current = set(order) if steps is None else set(steps)
    lateness = [r.lateness for r in runs if r.lateness is not None]
    every = [_step_stats(step, runs) for step in order]
    return PipelineStats(
        pipeline=pipeline,
        runs=len(runs),
        finished=len(finished),
        succeeded=sum(1 for r in finished if r.status is RunStatus.SUCCEEDED),
        duration=Distribution.of(r.wall_seconds for r in finished if r.status is RunStatus.SUCCEEDED),
        lateness=Distribution.of(lateness),
        steps=tuple(s for s in every if s.step in current),
        durations=tuple(r.wall_seconds for r in reversed(finished)),
        statuses=tuple(r.status for r in reversed(runs)),
        removed=tuple(s for s in every if s.step not in current),
    )


#: One character per run in ``flowctl stats``'s outcome strip, and the legend's word for it.
OUTCOME_MARKS: tuple[tuple[RunStatus, str, str], ...] = (
    (RunStatus.SUCCEEDED, "+", "succeeded"),
    (RunStatus.FAILED, "x", "failed"),
    (RunStatus.CANCELLED, "c", "cancelled"),
    (RunStatus.INTERRUPTED, "!", "interrupted"),
    (RunStatus.RUNNING, ".", "running"),
)


def outcome_strip(statuses: Sequence[RunStatus]) -> tuple[str, str]:
    """One character per run (oldest first) and the legend of the characters it uses."""
    marks = {status: mark for status, mark, _ in OUTCOME_MARKS}
    strip = "".join(marks.get(s, "?") for s in statuses)
    legend = [f"{mark} {word}" for _, mark, word in OUTCOME_MARKS if mark in strip]
    if "?" in strip:
        legend.append("? unknown")
    return strip, ", ".join(legend)


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], *, ascii_only: bool = False) -> str:
    """One character per value, scaled between the smallest and the largest."""
    if not values:
        return ""
    bars = "_.-=+*#@" if ascii_only else _BARS
    low, high = min(values), max(values)
    span = high - low
    if span <= 0:
        return bars[len(bars) // 2] * len(values)
    return "".join(bars[min(len(bars) - 1, int((v - low) / span * (len(bars) - 1) + 0.5))] for v in values)


__all__ = ["OUTCOME_MARKS", "SLOWER_FACTOR", "PipelineStats", "StepStats", "is_slower", "outcome_strip", "pipeline_stats", "sparkline"]
