"""Helpers for observe tests: a recorded run with hand-computed figures, real servers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request

from flowctl.observe.records import AttemptRecord, RunRecord, StepRecord
from flowctl.run.events import (
    AttemptFinished,
    AttemptKind,
    AttemptOutcome,
    AttemptStarted,
    Event,
    RunFinished,
    RunId,
    RunStarted,
    RunStatus,
    StepFinished,
    StepReady,
    StepStatus,
)
from tests.conftest import tool_missing

OK, FAILED, TIMEOUT = AttemptOutcome.OK, AttemptOutcome.FAILED, AttemptOutcome.TIMEOUT

# A run of six steps, 1000 s to 1130 s (the figures are worked out by hand in test_metrics.py):
#   extract ─┬─ transform ── load          lint ── publish (skipped: lint failed)
#            └─ report (continue_on_error; fails, remediated, fails again)
NEEDS = {"transform": ("extract",), "report": ("extract",), "load": ("transform",), "publish": ("lint",)}


def recorded_run(run_id: str = "20261125T100000-aaaa", scheduled_for: float | None = 995.0) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        pipeline="etl",
        status=RunStatus.FAILED,
        started_at=1000.0,
        finished_at=1130.0,
        scheduled_for=scheduled_for,
        needs=NEEDS,
        steps=(
            StepRecord("extract", StepStatus.SUCCEEDED, 1000.0, 1010.0, (AttemptRecord(1, 1000.0, 1010.0, OK, 0),)),
            StepRecord(
                "lint", StepStatus.FAILED, 1000.0, 1030.0, (AttemptRecord(1, 1005.0, 1030.0, TIMEOUT, None),)
            ),
            StepRecord(
                "transform",
                StepStatus.SUCCEEDED,
                1010.0,
                1040.0,
                (AttemptRecord(1, 1012.0, 1020.0, FAILED, 1), AttemptRecord(2, 1025.0, 1040.0, OK, 0)),
            ),
            StepRecord(
                "report",
                StepStatus.FAILED_ALLOWED,
                1010.0,
                1020.0,
                (
                    AttemptRecord(1, 1011.0, 1015.0, FAILED, 3),
                    AttemptRecord(2, 1015.0, 1016.0, OK, 0, AttemptKind.REMEDIATE),
                    AttemptRecord(3, 1016.0, 1020.0, FAILED, 3, AttemptKind.FINAL),
                ),
            ),
            StepRecord("load", StepStatus.SUCCEEDED, 1040.0, 1130.0, (AttemptRecord(1, 1040.0, 1130.0, OK, 0),)),
            StepRecord("publish", StepStatus.SKIPPED, None, 1030.0, ()),
        ),
    )


def events_of(record: RunRecord) -> list[Event]:
    """The events a scheduler would have emitted for ``record``, in time order."""
    rid = RunId(record.run_id)
    timed: list[tuple[float, int, Event]] = [
        (record.started_at, 0, RunStarted(rid, record.pipeline, record.started_at, tuple(s.step for s in record.steps)))
    ]
    for step in record.steps:
        if step.ready_at is not None:
            timed.append((step.ready_at, 1, StepReady(rid, step.step, step.ready_at)))
        for a in step.attempts:
            timed.append((a.started_at, 2, AttemptStarted(rid, step.step, a.attempt, a.started_at, kind=a.kind)))
            assert a.finished_at is not None and a.outcome is not None
            timed.append(
                (a.finished_at, 1, AttemptFinished(rid, step.step, a.attempt, a.finished_at, a.outcome, a.exit_code,
                                                   a.finished_at - a.started_at, a.kind))
            )
        assert step.finished_at is not None
        start = step.started_at
        took = step.finished_at - start if start is not None else 0.0
        timed.append(
            (step.finished_at, 3, StepFinished(rid, step.step, step.status, step.finished_at, len(step.attempts), took))
        )
    assert record.finished_at is not None
    timed.append(
        (record.finished_at, 9, RunFinished(rid, record.finished_at, record.status, record.finished_at - record.started_at))
    )
    return [e for _, _, e in sorted(timed, key=lambda t: (t[0], t[1]))]


def need_binary(name: str) -> str:
    """The path of a Debian-packaged binary; skip without it, except on CI where it must exist."""
    path = shutil.which(name)
    if path is None:
        tool_missing(f"{name} is not installed (apt-get install -y {name})")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def start_server(argv: list[str], url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(url, proc)
    except Exception:
        proc.kill()
        proc.wait()
        raise
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def simple_run(
    run_id: str,
    start: float,
    durations: dict[str, float],
    *,
    failed: frozenset[str] = frozenset(),
    pipeline: str = "etl",
) -> RunRecord:
    """A run executing ``durations``' steps one after another (each ready when the last ends)."""
    steps = []
    t = start
    for step, seconds in durations.items():
        ok = step not in failed
        attempt = AttemptRecord(1, t, t + seconds, OK if ok else FAILED, 0 if ok else 1)
        status = StepStatus.SUCCEEDED if ok else StepStatus.FAILED
        steps.append(StepRecord(step, status, t, t + seconds, (attempt,)))
        t += seconds
    status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
    return RunRecord(run_id, pipeline, status, start, t, tuple(steps))


def store_runs(state_dir: str | os.PathLike[str], *runs: RunRecord) -> None:
    """Record ``runs`` in a real SQLite state store through its event interface."""
    from flowctl.state.store import SqliteRunStore

    with SqliteRunStore(state_dir) as store:
        for run in runs:
            for event in events_of(run):
                store.record(event)
