"""``flowctl run --executor dask``: what a run leaves behind and who touches what (issue 16).

Waiting for a dead client's attempts (``--orphans wait``), SIGTERM on the client, a successful
run's own cluster gone with it, an adaptive cluster retiring idle workers, ``--dask-resources``
on flowctl's cluster, the Dask key of an attempt, and the state database written only by the
client. Real ``flowctl run`` processes, real LocalClusters on 127.0.0.1, real signals; every wait
is on an event (a file a step writes, a line flowctl prints, a process gone), never a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.cli.test_run_dask import LEASE_GONE, attempts, only_run, start, write
from tests.conftest import flowctl_env, run_flowctl, tool_missing
from tests.daskhelp import (
    alive,
    dask_test,
    local_cluster,
    pids_with_env,
    read_pid,
    require_dask,
    runs,
    state_rows,
    wait_for,
)

if TYPE_CHECKING:
    from distributed import LocalCluster

pytestmark = dask_test


@pytest.fixture(autouse=True)
def _dask_installed() -> None:
    require_dask()


@pytest.fixture(scope="module")
def shared() -> Iterator[LocalCluster]:
    """A cluster that flowctl did not start (a stand-in for a shared scheduler)."""
    with local_cluster(n_workers=2, threads=2) as cluster:
        yield cluster


def tree_pids(tag: str, marker: bytes | None = None) -> list[int]:
    """The processes that inherited ``FLOWCTL_TEST_TREE=tag`` (with ``marker`` in their command
    line, when given): the client, its cluster's workers, their supervisors, the steps."""
    found = []
    for pid in pids_with_env("FLOWCTL_TEST_TREE", tag):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker is None or marker in cmdline:
            found.append(pid)
    return found


# -- --orphans wait ----------------------------------------------------------------------------

ORPHANS = """
    version: 1
    name: orphaned
    steps:
      first: {run: 'echo ran >> first.count'}
      a:
        run: 'echo $$ > a.pid; [ -f a.again ] && exit 0; touch a.again; while [ ! -f a.release ]; do sleep 0.05; done; echo finished > a.end'
        needs: [first]
      b:
        run: 'echo $$ > b.pid; [ -f b.again ] && exit 0; touch b.again; exec sleep 300'
        needs: [first]
    """


def test_resume_with_orphans_wait_waits_for_a_dead_client_s_attempts_then_stops_what_is_left(tmp_path, shared) -> None:
    """`--orphans wait=DURATION` from a new client: an attempt of the dead run that ends within
    DURATION ends by itself (it is not killed, its lease is renewed meanwhile), the one that does
    not is stopped when DURATION is up, and only then does the resume start its own steps.

    Also pins the Dask key of an attempt, ``<run-id>:<step>:<attempt>``, with Dask's retries off."""
    from distributed import Client

    address = str(shared.scheduler_address)
    path = write(tmp_path, ORPHANS)
    proc = start(path, "--dask-scheduler", address, "--dask-lease", "10m")
    a_pid, b_pid = read_pid(tmp_path / "a.pid", limit=120), read_pid(tmp_path / "b.pid", limit=120)
    run_id = only_run(tmp_path)
    with Client(address, set_as_default=False) as client:
        tasks = client.run_on_scheduler(
            lambda dask_scheduler: {str(k): ts.retries for k, ts in dask_scheduler.tasks.items()})
    assert tasks.get(f"{run_id}:a:1") == 0 and tasks.get(f"{run_id}:b:1") == 0, tasks
    proc.kill()
    proc.communicate(timeout=60)
    assert alive(a_pid) and alive(b_pid)  # the workers do not know yet

    out_file = tmp_path / "resume.out"
    with out_file.open("w") as out:
        resume = subprocess.Popen(
            [sys.executable, "-m", "flowctl", "run", str(path), "--resume", "--dask-scheduler", address,
             "--orphans", "wait=10s"],
            cwd=tmp_path, env=flowctl_env(), stdout=out, stderr=subprocess.STDOUT, text=True,
        )
        try:
            wait_for(lambda: "waiting for them to end (--orphans wait=10s)" in out_file.read_text(),
                     "the resume to find the orphans and wait", limit=120)
            assert alive(a_pid) and alive(b_pid)  # waited for, not killed
            assert not (tmp_path / "a.end").exists()
            (tmp_path / "a.release").touch()
            wait_for(lambda: (tmp_path / "a.end").exists(), "a to end by itself")
            assert resume.wait(timeout=120) == 0, out_file.read_text()
        finally:
            if resume.poll() is None:
                resume.kill()
    text = out_file.read_text()
    assert f"2 attempt(s) of earlier run(s) {run_id} still running on the workers" in text
    assert "1 ended by themselves, 1 stopped" in text, text
    assert (tmp_path / "a.end").read_text() == "finished\n"
    assert not alive(b_pid) and pids_with_env("FLOWCTL_RUN_ID", run_id) == []
    assert (tmp_path / "first.count").read_text() == "ran\n"  # reused
    new_run = runs(tmp_path / ".flowctl")[-1]
    assert state_rows(tmp_path / ".flowctl", "SELECT step, status FROM steps WHERE run_id = ? ORDER BY step",
                      new_run) == [("a", "succeeded"), ("b", "succeeded"), ("first", "reused")]


# -- flowctl's own cluster: SIGTERM, success, resources, adaptive -------------------------------

def test_sigterm_on_the_client_exits_130_and_leaves_nothing_running_on_the_cluster(tmp_path) -> None:
    path = write(tmp_path, """
        version: 1
        name: terminated
        steps:
          a: {run: 'echo $$ > a.pid; exec sleep 300'}
          b: {run: 'echo $$ > b.pid; sleep 300 & wait'}
          c: {run: 'touch c.ran', needs: [a]}
        """)
    tag = uuid.uuid4().hex
    proc = start(path, "--executor", "dask", "--dask-threads", "1", env={"FLOWCTL_TEST_TREE": tag}, session=True)
    pids = [read_pid(tmp_path / "a.pid", limit=120), read_pid(tmp_path / "b.pid")]
    proc.send_signal(signal.SIGTERM)  # the client only, as `kill PID` or a service manager does
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert not any(alive(p) for p in pids)
    wait_for(lambda: not tree_pids(tag), "every process of the run's cluster to end", limit=LEASE_GONE)
    assert not (tmp_path / "c.ran").exists()
    assert "Traceback" not in err
    assert state_rows(tmp_path / ".flowctl", "SELECT status FROM runs") == [("interrupted",)]


def test_a_successful_run_with_dask_resources_leaves_no_process_of_its_cluster(tmp_path) -> None:
    """`--dask-resources gpu=1` on the cluster flowctl starts lets `resources: {gpu: 1}` steps
    run (one at a time per worker); when the run ends, its scheduler, workers and supervisor
    servers are gone (the scheduler and the nannies live in the client: it is gone too)."""
    step = "{run: 'echo $FLOWCTL_STEP start >> log; echo $FLOWCTL_STEP end >> log', resources: {gpu: 1}}"
    path = write(tmp_path, "version: 1\nname: gpus\nsteps:\n" + "".join(f"  g{i}: {step}\n" for i in range(4)))
    tag = uuid.uuid4().hex
    proc = start(path, "--executor", "dask", "--dask-workers", "2", "--dask-threads", "2", "--dask-resources",
                 "gpu=1", env={"FLOWCTL_TEST_TREE": tag})
    seen: set[int] = set()
    while proc.poll() is None:  # the cluster's processes while it runs: workers and supervisor servers
        seen.update(p for p in tree_pids(tag) if p != proc.pid)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    held = peak = 0
    for line in (tmp_path / "log").read_text().splitlines():
        held += 1 if line.endswith("start") else -1
        peak = max(peak, held)
    assert peak <= 2  # two workers with gpu=1 each, though they have four threads
    assert [r[2] for r in attempts(tmp_path, only_run(tmp_path))] == ["ok"] * 4
    assert seen, "no process of the cluster was ever seen"
    assert tree_pids(tag) == [], "processes of the run's cluster outlived it"
    assert not any(alive(p) for p in seen)


def test_an_adaptive_cluster_retires_an_idle_worker_while_the_run_goes_on(tmp_path) -> None:
    """Two steps at once grow `0:2` to two workers; while one step runs after them, the idle
    worker is retired (the process of one worker ends), and the run finishes on the other."""
    path = write(tmp_path, """
        version: 1
        name: shrink
        steps:
          w1: {run: 'touch w1.on; while [ ! -f both ]; do sleep 0.05; done'}
          w2: {run: 'touch w2.on; while [ ! -f both ]; do sleep 0.05; done'}
          last: {run: 'touch last.on; while [ ! -f release ]; do sleep 0.05; done', needs: [w1, w2]}
        """)
    tag = uuid.uuid4().hex
    proc = start(path, "--executor", "dask", "--dask-workers", "0:2", "--dask-threads", "1",
                 env={"FLOWCTL_TEST_TREE": tag})
    try:
        wait_for(lambda: (tmp_path / "w1.on").exists() and (tmp_path / "w2.on").exists(), "two workers", limit=120)
        assert len(tree_pids(tag, b"spawn_main")) == 2
        (tmp_path / "both").touch()
        wait_for(lambda: (tmp_path / "last.on").exists(), "the last step to start")
        wait_for(lambda: len(tree_pids(tag, b"spawn_main")) == 1, "the idle worker to be retired", limit=60)
        (tmp_path / "release").touch()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    hosts = dict(state_rows(tmp_path / ".flowctl", "SELECT step, host FROM attempts"))
    assert hosts["w1"] != hosts["w2"]


# -- only the client writes the state database ---------------------------------------------------

def test_only_the_client_writes_the_state_folder_the_workers_see_it_read_only(tmp_path) -> None:
    """The worker runs in a mount namespace where the state folder is a read-only bind mount of
    itself (`unshare -rm`, then `mount --bind -o ro`): nothing on the worker's side (the worker,
    its supervisors, the steps) can write there, which a step checks by trying. The run still
    records every attempt, its outcome and its log: the client wrote all of them."""
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        tool_missing("unprivileged mount namespaces (unshare -rm) are not available here")
    state = tmp_path / "state"
    state.mkdir()
    path = write(tmp_path / "work", f"""
        version: 1
        name: readonly
        steps:
          probe:
            run: 'if touch {state}/probe 2>/dev/null; then echo writable; exit 9; fi; echo read-only here'
          again: {{run: 'echo $FLOWCTL_STEP; exit 3', retries: 1, retry_delay: 0s, continue_on_error: true, needs: [probe]}}
        """)
    with local_cluster(n_workers=0) as cluster:
        dask = Path(sys.executable).with_name("dask")
        worker = subprocess.Popen(
            ["unshare", "-rm", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$1" worker "$2" --no-nanny '
             '--nthreads 2 --host 127.0.0.1 --no-dashboard', str(state), str(dask), str(cluster.scheduler_address)],
            env=flowctl_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            wait_for(lambda: cluster.scheduler_info.get("workers"), "the read-only worker to join", limit=120)
            proc = run_flowctl("run", str(path), "--dask-scheduler", str(cluster.scheduler_address),
                               "--state-dir", str(state), cwd=path.parent, timeout=120)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (state / "probe").exists()
    run_id = only_run_in(state)
    assert state_rows(state, "SELECT step, attempt, outcome, exit_code FROM attempts WHERE run_id = ? "
                      "ORDER BY step, attempt", run_id) == [
        ("again", 1, "failed", 3), ("again", 2, "failed", 3), ("probe", 1, "ok", 0)]
    assert (state / "runs" / run_id / "probe" / "1.log").read_text() == "read-only here\n"
    assert (state / "runs" / run_id / "again" / "2.log").read_text() == "again\n"


def only_run_in(state: Path) -> str:
    [run_id] = runs(state)
    return run_id
