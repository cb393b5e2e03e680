"""Figures of one recorded run, checked against values worked out by hand."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowctl.observe.metrics import (
    compute_run_metrics,
    critical_path,
    max_queue_depth,
    mean_queue_depth,
    percentile,
    run_samples,
)
from flowctl.observe.recorded import history_metrics, run_metrics
from flowctl.observe.records import AttemptRecord, RunRecord, RunRecorder, StepRecord
from flowctl.run.events import (
    AttemptKind,
    AttemptOutcome,
    AttemptStarted,
    RunId,
    RunStarted,
    RunStatus,
    StepReady,
    StepStatus,
)
from flowctl.state.store import SqliteRunStore
from tests.observe.helpers import NEEDS, events_of, recorded_run


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([10.0, 0.0, 5.0], 100) == 10.0
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)


def test_recorded_run_figures() -> None:
    m = compute_run_metrics(recorded_run())
    assert m.wall_seconds == 130.0
    assert dict(m.counts) == {"succeeded": 3, "failed": 1, "failed (allowed)": 1, "skipped": 1}
    assert (m.steps_total, m.steps_executed, m.steps_completed, m.steps_failed) == (6, 5, 5, 2)
    # attempts: extract 1, lint 1, transform 2, report 2 (remediation is not an attempt), load 1
    assert (m.attempts, m.failed_attempts, m.retries, m.remediations) == (7, 4, 2, 1)
    assert m.error_rate == pytest.approx(4 / 7)
    assert m.step_error_rate == pytest.approx(2 / 5)
    assert m.throughput_per_minute == pytest.approx(5 / (130 / 60))
    # execution times 9 (report 1011-1020), 10, 25, 28 (transform 1012-1040), 90
    assert dict(m.step_duration) == {"extract": 10.0, "lint": 25.0, "transform": 28.0, "report": 9.0, "load": 90.0}
    assert (m.execution.p50, m.execution.max) == (25.0, 90.0)
    assert m.execution.p95 == pytest.approx(28 + 62 * 0.8)
    assert m.execution.p99 == pytest.approx(28 + 62 * 0.96)
    # latencies (ready -> finished) 10, 30, 30, 10, 90 -> sorted 10 10 30 30 90
    assert m.latency.count == 5
    assert m.latency.p50 == 30.0
    assert m.latency.p95 == pytest.approx(30 + 60 * 0.8)
    assert m.latency.p99 == pytest.approx(30 + 60 * 0.96)
    # queue waits 0 (extract), 5 (lint), 2 (transform), 1 (report), 0 (load)
    assert m.queue_wait.p50 == 1.0
    assert m.queue_wait.p99 == pytest.approx(2 + 3 * 0.96)
    # lint waits [1000, 1005); transform [1010, 1012) and report [1010, 1011) overlap
    assert m.max_queue_depth == 2
    assert m.mean_queue_depth == pytest.approx((5 + 2 + 1) / 130)  # waiting step-seconds over the wall time
    assert m.critical_path == ("extract", "transform", "load")
    assert m.critical_path_seconds == 128.0
    assert dict(m.step_attempts) == {"extract": 1, "lint": 1, "transform": 2, "report": 2, "load": 1, "publish": 0}
    assert m.lateness == 5.0
    assert m.any_step_failed
    assert m.parallel_speedup == pytest.approx(162 / 130)


def test_to_dict_is_json_ready() -> None:
    import json

    data = json.loads(json.dumps(compute_run_metrics(recorded_run()).to_dict()))
    assert data["queue_wait"]["p50"] == 1.0
    assert data["critical_path"] == ["extract", "transform", "load"]
    assert data["status"] == "failed"


def test_queue_depth_counts_a_step_never_started_until_it_ended() -> None:
    steps = (*tuple(StepRecord(f"s{i}", StepStatus.CANCELLED, ready_at=0.0, finished_at=None) for i in range(3)), StepRecord("t", StepStatus.SUCCEEDED, 1.0, 3.0, (AttemptRecord(1, 2.0, 3.0, AttemptOutcome.OK, 0),)))
    record = RunRecord("r", "p", RunStatus.CANCELLED, 0.0, 5.0, steps)
    assert max_queue_depth(record, 5.0) == 4
    # a step ready and started at the same instant never waits
    instant = RunRecord(
        "r", "p", RunStatus.SUCCEEDED, 0.0, 1.0,
        (StepRecord("a", StepStatus.SUCCEEDED, 0.0, 1.0, (AttemptRecord(1, 0.0, 1.0, AttemptOutcome.OK, 0),)),),
    )
    assert max_queue_depth(instant, 1.0) == 0


_MOMENT = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


@st.composite
def _queued_runs(draw: st.DrawFn) -> RunRecord:
    """Runs whose steps became ready, maybe started, maybe finished, at arbitrary moments."""
    steps = []
    for i in range(draw(st.integers(0, 12))):
        ready = draw(_MOMENT)
        started = draw(st.one_of(st.none(), _MOMENT.map(lambda d, r=ready: r + d / 10)))
        finished = draw(st.one_of(st.none(), _MOMENT.map(lambda d, s=started or ready: s + d / 10)))
        attempts = () if started is None else (AttemptRecord(1, started, finished, AttemptOutcome.OK, 0),)
        status = StepStatus.SUCCEEDED if finished is not None else StepStatus.CANCELLED
        steps.append(StepRecord(f"s{i}", status, ready, finished, attempts))
    start = draw(_MOMENT)
    return RunRecord("r", "p", RunStatus.SUCCEEDED, start, start + draw(_MOMENT), tuple(steps))


@settings(max_examples=300, deadline=None)
@given(_queued_runs())
def test_mean_queue_depth_is_the_waiting_time_over_the_wall_time(record: RunRecord) -> None:
    """The area under the depth curve equals the time every step spent waiting, clipped to the
    run: an independent way to the same number."""
    assert record.finished_at is not None
    end = record.finished_at
    wall = end - record.started_at
    mean = mean_queue_depth(record, end)
    if wall <= 0:
        assert mean is None
        return
    waiting = 0.0
    for step in record.steps:
        until = step.started_at if step.started_at is not None else (step.finished_at if step.finished_at is not None else end)
        waiting += max(0.0, min(until, end) - max(step.ready_at or 0.0, record.started_at))
    assert mean == pytest.approx(waiting / wall, abs=1e-9)
    assert 0.0 <= mean <= max_queue_depth(record, end) + 1e-9


def test_samples_are_what_the_distributions_summarise() -> None:
    record = recorded_run()
    m, samples = compute_run_metrics(record), run_samples(record)
    assert sorted(samples.latency) == [10.0, 10.0, 30.0, 30.0, 90.0] and m.latency.count == len(samples.latency)
    assert sorted(samples.queue_wait) == [0.0, 0.0, 1.0, 2.0, 5.0] and m.queue_wait.count == len(samples.queue_wait)


def test_critical_path_without_graph_or_on_a_long_chain() -> None:
    assert critical_path({"a": 1.0}, {}) == ((), None)
    chain = {f"s{i}": 1.0 for i in range(5000)}
    needs = {f"s{i}": (f"s{i - 1}",) for i in range(1, 5000)}
    path, total = critical_path(chain, needs)
    assert len(path) == 5000 and total == 5000.0 and path[0] == "s0"


def test_a_run_without_attempts_has_no_rates() -> None:
    m = compute_run_metrics(RunRecord("r", "p", RunStatus.SUCCEEDED, 10.0, 10.0, ()))
    assert m.error_rate is None and m.step_error_rate is None and m.throughput_per_minute is None
    assert m.latency.p99 is None and m.max_queue_depth == 0


def test_recorder_rebuilds_the_run_from_its_events() -> None:
    original = recorded_run(scheduled_for=None)
    recorder = RunRecorder(needs=NEEDS)
    for event in events_of(original):
        recorder(event)  # type: ignore[arg-type]
    rebuilt = recorder.record()
    assert {s.step: s for s in rebuilt.steps} == {s.step: s for s in original.steps}
    assert compute_run_metrics(rebuilt) == compute_run_metrics(original)


def test_recorder_closes_a_running_run_at_now() -> None:
    recorder = RunRecorder()
    rid = RunId("r1")
    recorder(RunStarted(rid, "p", 100.0, ("a",)))
    recorder(StepReady(rid, "a", 100.0))
    recorder(AttemptStarted(rid, "a", 1, 101.0, kind=AttemptKind.ATTEMPT))
    m = compute_run_metrics(recorder.record(now=160.0), now=160.0)
    assert m.status is RunStatus.RUNNING and m.wall_seconds == 60.0 and m.queue_wait.p50 == 1.0
    assert m.step_duration == {} and m.attempts == 1 and m.failed_attempts == 0


def test_figures_from_a_real_state_store_match(tmp_path: Path) -> None:
    """Record the run's events in a real SQLite store, read them back, get the same figures."""
    original = recorded_run(scheduled_for=None)
    with SqliteRunStore(tmp_path) as store:
        for event in events_of(original):
            store.record(event)
    (m,) = history_metrics(tmp_path, "etl", needs=NEEDS)
    assert m == compute_run_metrics(original)
    assert run_metrics(tmp_path, original.run_id[:12], NEEDS) == m
    assert history_metrics(tmp_path, "etl", since=2000.0) == ()
    assert history_metrics(tmp_path, "other") == ()


@st.composite
def _timed_dags(draw: st.DrawFn) -> tuple[dict[str, float], dict[str, tuple[str, ...]]]:
    """Durations of some steps of a random DAG (in any order; needs may name steps without a
    duration, which do not count)."""
    n = draw(st.integers(min_value=1, max_value=20))
    ids = [f"s{i}" for i in range(n)]
    needs = {ids[i]: tuple(draw(st.sets(st.sampled_from(ids[:i]), max_size=3))) if i else () for i in range(n)}
    timed = draw(st.lists(st.sampled_from(ids), unique=True, min_size=1))
    return {s: draw(st.floats(min_value=0.0, max_value=100.0)) for s in timed}, needs


@settings(max_examples=300, deadline=None)
@given(_timed_dags())
def test_the_critical_path_is_the_longest_chain_whatever_the_order(case) -> None:  # type: ignore[no-untyped-def]
    import networkx as nx

    durations, needs = case
    path, total = critical_path(durations, needs)
    graph = nx.DiGraph()
    for s, took in durations.items():  # a step is an edge (in -> out) weighing its duration
        graph.add_edge(f"{s}<", f"{s}>", weight=took)
        for n in needs[s]:
            if n in durations:
                graph.add_edge(f"{n}>", f"{s}<", weight=0.0)
    longest = nx.dag_longest_path_length(graph, weight="weight")
    assert path and all(a in needs[b] for a, b in itertools.pairwise(path))
    assert total == pytest.approx(sum(durations[s] for s in path))
    assert total == pytest.approx(longest)
    backwards = dict(reversed(list(durations.items())))  # the answer does not depend on the order
    assert critical_path(backwards, needs) == (path, total)
