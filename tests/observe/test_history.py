"""Figures across runs: durations, success rate, lateness, per-step baselines, the sparkline."""

from __future__ import annotations

import dataclasses

import pytest

from flowctl.observe.history import pipeline_stats, sparkline
from flowctl.observe.metrics import compute_run_metrics
from flowctl.observe.report import stats_lines
from flowctl.run.events import RunStatus
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
