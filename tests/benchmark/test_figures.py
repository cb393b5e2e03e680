"""Per-run and aggregated figures of a benchmark, worked out by hand from made-up runs."""

from __future__ import annotations

import statistics

import pytest

from flowctl.benchmark.figures import FIGURES, Summary, aggregate, run_figures
from tests.benchmark.helpers import sample


def test_one_execution_figures() -> None:
    # steps: a waits 0.0 s and runs 1 s, b waits 0.5 s (ready 0, started 0.5) and ends at 1.5
    s = sample(1, wall=2.0, step_times=((0.0, 0.0, 1.0), (0.0, 0.5, 1.5)))
    f = run_figures(s)
    assert set(f) == {fig.key for fig in FIGURES}
    assert f["wall"] == 2.0
    assert f["throughput"] == pytest.approx(2 / 2.0)
    assert f["latency_p50"] == pytest.approx(1.25) and f["latency_p99"] == pytest.approx(1.0 + 0.5 * 0.99)
    assert f["queue_wait_p50"] == pytest.approx(0.25)
    assert f["queue_depth_max"] == 1.0
    assert f["queue_depth_mean"] == pytest.approx(0.5 / 1.5)  # 0.5 s waiting over a 1.5 s run
    assert f["error_rate"] == 0.0 and f["retries"] == 0.0
    # overhead: the wall time minus the critical path (no needs: the longest step, 1 s)
    assert f["overhead"] == pytest.approx(2.0 - 1.0)


def test_aggregate_pools_steps_and_summarises_runs() -> None:
    runs = [
        sample(1, start=0.0, wall=2.0, step_times=((0.0, 0.0, 1.0),)),
        sample(2, start=1.0, wall=3.0, step_times=((0.0, 0.2, 2.0), (0.0, 0.0, 0.5)), failed=(1,)),
        sample(3, start=2.0, wall=4.0, step_times=((0.0, 0.1, 0.3),)),
    ]
    agg = aggregate(runs)
    assert (agg.runs, agg.failed_runs, agg.steps_completed, agg.attempts, agg.failed_attempts) == (3, 1, 4, 4, 1)
    assert agg.elapsed_seconds == 6.0  # first spawn (0) to last exit (2 + 4)
    assert agg.busy_seconds == 6.0  # [0, 2] [1, 4] [2, 6] cover it all
    assert agg.throughput == pytest.approx(4 / 6.0)
    apart = aggregate([sample(1, start=0.0, wall=1.0), sample(2, start=3.0, wall=1.0)])
    assert (apart.elapsed_seconds, apart.busy_seconds) == (4.0, 2.0)  # the gap between them is no work
    assert apart.throughput == pytest.approx(2 / 2.0)
    assert agg.error_rate == pytest.approx(1 / 4) and agg.step_error_rate == pytest.approx(1 / 4)
    # latencies of every step of every run: 1.0, 2.0, 0.5, 0.3 -> pooled, not averaged per run
    assert agg.latency.count == 4 and agg.latency.max == 2.0
    assert agg.latency.p50 == pytest.approx(statistics.median([1.0, 2.0, 0.5, 0.3]))
    assert agg.queue_wait.max == pytest.approx(0.2)
    wall = agg.wall
    assert (wall.mean, wall.median, wall.min, wall.max) == (3.0, 3.0, 2.0, 4.0)
    assert wall.sd == pytest.approx(statistics.stdev([2.0, 3.0, 4.0]))
    assert agg.steps["s0"].duration.mean == pytest.approx((1.0 + 1.8 + 0.2) / 3)
    assert agg.steps["s1"].failed_runs == 1 and agg.steps["s1"].duration.count == 1
    subjects = agg.subjects
    assert subjects["step_latency_p99"] == agg.latency.p99 and subjects["duration"] == 3.0
    assert subjects["wall_max"] == 4.0 and subjects["throughput"] == agg.throughput
    assert subjects["step.s0.duration"] == agg.steps["s0"].duration.mean and subjects["step.s1.attempts"] == 1.0


def test_summary_of_nothing_and_of_one() -> None:
    assert Summary.of([]) == Summary()
    one = Summary.of([2.5, None])
    assert (one.count, one.mean, one.sd, one.min, one.max) == (1, 2.5, None, 2.5, 2.5)


def test_an_empty_benchmark_has_no_figures() -> None:
    agg = aggregate([])
    assert agg.runs == 0 and agg.throughput is None and agg.latency.p99 is None
    assert agg.subjects["step_latency_p99"] is None and agg.subjects["retries"] is None
