"""Figures across runs: durations, success rate, lateness, per-step baselines, the sparkline."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowctl.observe.metric_records import RunRecord
from flowctl.observe.metrics import compute_run_metrics
from flowctl.observe.report import stats_lines
from flowctl.observe.trends import outcome_strip, pipeline_stats, sparkline
from flowctl.run.events import AttemptOutcome, RunStatus, StepStatus
from tests.observe.helpers import recorded_run, simple_run


def test_stats_of_scheduled_and_unscheduled_runs() -> None:
    older = [
        dataclasses.replace(simple_run(f"r{i}", 100.0 * i, {"a": 10.0, "b": 20.0 + i}), scheduled_for=100.0 * i - i)
        for i in range(1, 5)
    ]
    running = dataclasses.replace(simple_run("live", 900.0, {"a": 10.0}), status=RunStatus.RUNNING, finished_at=None)
    runs = [compute_run_metrics(r, now=905.0) for r in [running, *reversed(older)]]  # newest first
    stats = pipeline_stats("etl", runs)
    assert (stats.runs, stats.finished, stats.succeeded) == (5, 4, 4)
    assert stats.success_rate == 1.0
    assert stats.duration.p50 == pytest.approx(32.5)  # 31, 32, 33, 34
    assert stats.durations == (31.0, 32.0, 33.0, 34.0)  # oldest first
    assert stats.lateness.count == 4 and stats.lateness.max == 4.0 and stats.lateness.p50 == 2.5
    b = next(s for s in stats.steps if s.step == "b")
    assert (b.latest, b.baseline, b.slower) == (24.0, 22.0, False)
    assert stats.slowest is not None and stats.slowest.step == "b"
    assert stats.most_failing is None


def test_a_failed_latest_run_is_compared_with_earlier_successes() -> None:
    runs = [compute_run_metrics(recorded_run())] + [
        compute_run_metrics(simple_run(f"ok{i}", 10.0 * i, {"load": 30.0, "lint": 5.0})) for i in range(3)
    ]
    stats = pipeline_stats("etl", runs)
    # load's latest success took 90 s against 30 s; lint timed out in the latest run (no step
    # time), so its latest success is the 5 s of the run before
    assert [s.step for s in stats.slower_than_baseline] == ["load"]
    # report ran once and failed (100%); lint failed in 1 of its 4 runs
    assert stats.most_failing is not None and stats.most_failing.step == "report"
    text = "\n".join(stats_lines(stats, charts=True))
    assert "slower         load: 1m30s in the latest run, baseline 30.0s" in text
    assert "+++x" in text


def test_no_runs() -> None:
    assert stats_lines(pipeline_stats("etl", [])) == ["etl: no recorded runs"]


def test_sparkline() -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5]) == "▅▅"
    assert sparkline([0, 10], ascii_only=True) == "_@"
    assert sparkline([]) == ""


def _cut(record: RunRecord, step: str, outcome: AttemptOutcome, status: StepStatus, seconds: float) -> RunRecord:
    """``record`` with ``step``'s one attempt ending as ``outcome`` after ``seconds``."""
    steps = []
    for s in record.steps:
        if s.step == step:
            start = s.attempts[0].started_at
            attempt = dataclasses.replace(s.attempts[0], finished_at=start + seconds, outcome=outcome, exit_code=None)
            s = dataclasses.replace(s, status=status, finished_at=start + seconds, attempts=(attempt,))
        steps.append(s)
    return dataclasses.replace(record, steps=tuple(steps))


def test_cancelled_and_interrupted_executions_are_no_step_time() -> None:
    """Step percentiles, latest and baseline count executions that succeeded only."""
    ok = [simple_run(f"ok{i}", 1000.0 * i, {"extract": 10.0, "load": 20.0}) for i in range(1, 4)]
    cancelled = _cut(
        dataclasses.replace(simple_run("c", 5000.0, {"extract": 10.0, "load": 20.0}), status=RunStatus.CANCELLED),
        "load", AttemptOutcome.CANCELLED, StepStatus.CANCELLED, 900.0,
    )
    interrupted = _cut(
        dataclasses.replace(simple_run("i", 6000.0, {"extract": 10.0, "load": 20.0}), status=RunStatus.INTERRUPTED),
        "load", AttemptOutcome.CANCELLED, StepStatus.INTERRUPTED, 700.0,
    )
    runs = [compute_run_metrics(r) for r in (interrupted, cancelled, *reversed(ok))]  # newest first
    stats = pipeline_stats("etl", runs)
    load = next(s for s in stats.steps if s.step == "load")
    assert (load.p50, load.p99, load.latest, load.baseline, load.runs) == (20.0, 20.0, 20.0, 20.0, 5)
    assert stats.slowest is not None and (stats.slowest.step, stats.slowest.p50) == ("load", 20.0)
    assert stats.slower_than_baseline == ()
    assert stats.duration.count == 3 and stats.duration.p50 == 30.0  # runs that succeeded


def test_steps_of_the_current_definition_come_first_and_removed_ones_apart() -> None:
    old = [simple_run(f"old{i}", 100.0 * i, {"legacy": 500.0, "extract": 10.0}, failed=frozenset({"legacy"}))
           for i in range(1, 3)]
    new = [simple_run(f"new{i}", 1000.0 * i, {"extract": 12.0, "load": 20.0}) for i in range(1, 3)]
    runs = [compute_run_metrics(r) for r in reversed([*old, *new])]
    stats = pipeline_stats("etl", runs, steps=("load", "extract", "report"))
    assert [s.step for s in stats.steps] == ["load", "extract", "report"]  # the definition's order
    assert [s.step for s in stats.removed] == ["legacy"]
    assert stats.most_failing is None  # legacy failed twice, but it is gone
    assert stats.slowest is not None and stats.slowest.step == "load"
    report = next(s for s in stats.steps if s.step == "report")
    assert (report.runs, report.p50) == (0, None)  # not run yet: shown, no figures
    text = stats_lines(stats)
    assert text[-1] == "no longer in the pipeline (left out above): legacy"
    assert not any(line.startswith("legacy") for line in text[:-1])
    data = stats.to_dict()
    assert [s["step"] for s in data["removed_steps"]] == ["legacy"]  # type: ignore[index]
    everything = pipeline_stats("etl", runs)  # definition unknown: every recorded step
    assert {s.step for s in everything.steps} == {"legacy", "extract", "load"} and everything.removed == ()


@given(st.lists(st.sampled_from(list(RunStatus)), max_size=40))
def test_every_symbol_of_the_outcome_strip_is_in_its_legend(statuses: list[RunStatus]) -> None:
    runs = [
        dataclasses.replace(
            compute_run_metrics(simple_run(f"r{i}", 100.0 * i, {"a": 1.0}), now=10_000.0), status=status
        )
        for i, status in enumerate(reversed(statuses))
    ]
    lines = stats_lines(pipeline_stats("etl", runs), charts=True)
    strip, legend = outcome_strip(tuple(statuses))
    assert len(strip) == len(statuses)
    explained = {part.split(" ", 1)[0] for part in legend.split(", ")} if legend else set()
    assert set(strip) == explained
    if statuses and any(r.status in {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED,
                                     RunStatus.INTERRUPTED} for r in runs):
        assert f"               {strip}  ({legend})" in lines


def test_chaos_runs_never_shift_a_step_baseline() -> None:
    """Issue 17: a step slowed down by injected delays is no baseline for the next real run."""
    real = [compute_run_metrics(simple_run(f"ok{i}", 10.0 * i, {"load": 30.0})) for i in range(5)]
    chaotic = [dataclasses.replace(compute_run_metrics(simple_run(f"c{i}", 100.0 + i, {"load": 300.0})), chaos=True)
               for i in range(5)]
    latest = compute_run_metrics(simple_run("new", 200.0, {"load": 90.0}))
    stats = pipeline_stats("etl", [latest, *chaotic, *real])  # newest first
    load = next(s for s in stats.steps if s.step == "load")
    assert (load.latest, load.baseline, load.slower) == (90.0, 30.0, True)
