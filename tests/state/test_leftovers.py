"""Which processes of earlier runs may be ended: real processes, real state, the real lock.

Sleepers are started with the environment a step would have. A dead run's runner is recorded
with a pid that is nobody's parent, and its "orphans" are started through a shell that exits
at once, as after ``kill -9``; a live run's runner is this test process, and its step a child.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
import uuid

import pytest

from flowctl.errors import LockedError
from flowctl.run import procs
from flowctl.run.events import RunId, RunStarted
from flowctl.run.executors.sweep import end_leftovers
from flowctl.state import db, lock
from flowctl.state.leftovers import find_leftovers
from flowctl.state.store import SqliteRunStore

DEAD_RUNNER = 999_998  # a runner pid that is no process's parent (the runner was killed)


@pytest.fixture
def rid():
    """A run id of this test alone (the scan is machine-wide; tests run in parallel)."""
    return lambda name: f"{name}-{uuid.uuid4().hex[:8]}"


def record_running(state_dir, run_id: str, pipeline: str, runner: int | None = None) -> None:
    """Record ``run_id`` as running, started by runner pid ``runner`` (default: this process)."""
    with SqliteRunStore(state_dir) as store:
        store.record(RunStarted(RunId(run_id), pipeline, time.time(), ("a",)))
    if runner is not None:
        conn = sqlite3.connect(db.db_path(state_dir))
        with conn:
            conn.execute("UPDATE runs SET pid = ? WHERE run_id = ?", (runner, run_id))
        conn.close()


def sleeper(run_id: str, runner: int, *, orphan: bool, started: list[int]) -> int:
    """A ``sleep 60`` tagged as a step of ``run_id`` started by runner pid ``runner``; its pid."""
    env = {**os.environ, "FLOWCTL_RUN_ID": run_id, "FLOWCTL_STEP": "a", "FLOWCTL_PROC_TOKEN": f"{runner}.beef.1"}
    if not orphan:
        proc = subprocess.Popen(["sleep", "60"], env=env)
        started.append(proc.pid)
        return proc.pid
    out = subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"], env=env, capture_output=True, text=True)
    pid = int(out.stdout)
    started.append(pid)
    return pid


@pytest.fixture
def started():
    pids: list[int] = []
    yield pids
    for pid in pids:
        procs.signal_pid(pid, 9)
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def test_only_this_pipelines_dead_runs_of_this_folder_are_found_and_ended(tmp_path, started, rid):
    dead, other_run = rid("dead"), rid("other")
    record_running(tmp_path, dead, "etl", DEAD_RUNNER)
    record_running(tmp_path, other_run, "other", DEAD_RUNNER)  # another pipeline in the same folder
    ours = sleeper(dead, DEAD_RUNNER, orphan=True, started=started)
    elsewhere = sleeper(dead, 999_999, orphan=True, started=started)  # same id, another folder's runner
    other = sleeper(other_run, DEAD_RUNNER, orphan=True, started=started)
    with lock.held(tmp_path, "etl") as held:
        found = find_leftovers(tmp_path, "etl", held)
        assert [p.pid for p in found.processes] == [ours]
        assert found.by_run() == {dead: found.processes} and found.processes[0].step == "a"
        ending = end_leftovers(found.processes, wait=0, grace=2)
    assert (ending.terminated, ending.left) == (1, ())
    assert not procs.is_alive(ours)
    assert procs.is_alive(elsewhere) and procs.is_alive(other)


def test_a_runner_still_parent_of_its_steps_is_alive_whatever_the_lock_says(tmp_path, started, rid):
    """The lock was free (its file deleted under the run, say), but a step of the recorded run
    is still a child of its recorded runner: that run lives, and nothing may be ended."""
    live = rid("live")
    record_running(tmp_path, live, "etl")
    child = sleeper(live, os.getpid(), orphan=False, started=started)
    with lock.held(tmp_path, "etl") as held, pytest.raises(LockedError, match="still runs its steps"):
        find_leftovers(tmp_path, "etl", held)
    assert procs.is_alive(child)


def test_nothing_is_scanned_when_no_earlier_run_can_have_left_anything(tmp_path):
    from flowctl.run.events import RunFinished, RunStatus

    with SqliteRunStore(tmp_path) as store:
        store.record(RunStarted(RunId("r1"), "etl", time.time(), ("a",)))
        store.record(RunFinished(RunId("r1"), time.time(), RunStatus.SUCCEEDED))

    def scan() -> list[procs.Tagged]:
        raise AssertionError("scanned although the last run ended normally")

    with lock.held(tmp_path, "etl") as held:
        assert find_leftovers(tmp_path, "etl", held, scan=scan).processes == ()


def test_waiting_counts_what_ends_by_itself(tmp_path, started, rid):
    dead = rid("dead")
    record_running(tmp_path, dead, "etl", DEAD_RUNNER)
    env = {**os.environ, "FLOWCTL_RUN_ID": dead, "FLOWCTL_PROC_TOKEN": f"{DEAD_RUNNER}.beef.2"}
    out = subprocess.run(["sh", "-c", "sleep 0.3 >/dev/null 2>&1 & echo $!"], env=env, capture_output=True, text=True)
    started.append(int(out.stdout))
    with lock.held(tmp_path, "etl") as held:
        found = find_leftovers(tmp_path, "etl", held)
        assert len(found.processes) == 1
        ending = end_leftovers(found.processes, wait=30, grace=2)
    assert (ending.by_themselves, ending.terminated, ending.killed) == (1, 0, 0)
