"""``flowctl run --executor dask`` end to end (issue 16): real ``flowctl run`` processes, real
Dask LocalClusters of worker processes on 127.0.0.1, real signals, the real state database.

``shared`` is one cluster for the module, started by the test as a stand-in for a shared
scheduler (flowctl connects with ``--dask-scheduler``); tests that kill a worker or need
flowctl's own cluster start theirs. Every wait is on an event (a file a step writes, a state
row, a process gone), never a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import flowctl_env, run_flowctl
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

pytestmark = dask_test
LEASE_GONE = 30.0  # the most a test waits for processes to go once they should


@pytest.fixture(autouse=True)
def _dask_installed() -> None:
    require_dask()  # skips on a machine without the extra; fails under CI=true


@pytest.fixture(scope="module")
def shared() -> Iterator[str]:
    """A cluster that flowctl did not start: two workers of two threads, each with gpu=1."""
    with local_cluster(n_workers=2, threads=2, resources={"gpu": 1}) as cluster:
        yield str(cluster.scheduler_address)


def write(folder: Path, text: str, name: str = "pipeline.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def start(path: Path, *args: str, env: dict[str, str] | None = None, session: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flowctl", "run", str(path), *args],
        cwd=path.parent, env=flowctl_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=session,
    )


def only_run(folder: Path) -> str:
    [run_id] = runs(folder / ".flowctl")
    return run_id


def attempts(folder: Path, run_id: str) -> list[tuple[object, ...]]:
    return state_rows(folder / ".flowctl", "SELECT step, attempt, outcome, exit_code, host FROM attempts "
                      "WHERE run_id = ? ORDER BY step, attempt", run_id)


# -- the same result as locally --------------------------------------------------------------

def thirty_steps() -> str:
    lines = [
        "version: 1", "name: thirty", "params: {day: {default: '2026-12-01'}}",
        "env: {GREETING: hello}", "secret_env: [TOKEN]", "steps:",
        "  extract: {run: 'echo \"$GREETING ${{ params.day }} $TOKEN\" > extract.out', outputs: [extract.out]}",
    ]
    for i in range(20):
        lines.append(f"  clean{i}: {{run: 'cat extract.out > clean{i}.out; echo {i}', needs: [extract]}}")
    lines += [
        "  flaky: {run: 'exit 3', retries: 1, retry_delay: 0s, continue_on_error: true, needs: [extract]}",
        "  broken: {run: 'echo broken >&2; exit 4', needs: [clean0]}",
        "  after_broken: {run: 'true', needs: [broken]}",
        "  join: {run: 'cat clean*.out | wc -l', needs: [" + ", ".join(f"clean{i}" for i in range(20)) + "]}",
        "  argv: {run: [sh, -c, 'echo argv form'], needs: [join]}",
        "  env_check: {run: 'echo \"${ONLY_ON_CLIENT-unset}\"', needs: [join]}",
        "  remediated: {run: 'test -f fixed.$FLOWCTL_RUN_ID', remediate: {run: 'touch fixed.$FLOWCTL_RUN_ID'}, "
        "needs: [join]}",
        "  last: {run: 'true', needs: [argv, env_check, remediated, flaky]}",
        "  tail_a: {run: 'true'}",
    ]
    return "\n".join(lines) + "\n"


def test_the_same_pipeline_leaves_the_same_state_rows_as_locally(tmp_path, shared) -> None:
    path = write(tmp_path, thirty_steps())
    rows = {}
    outputs = {}
    for executor in ("local", "dask"):  # one folder: the same fingerprints (the second run forced)
        args = ["-j", "4"] + (["--executor", "dask", "--dask-scheduler", shared, "-v", "--force"] if executor == "dask" else [])
        proc = run_flowctl("run", str(path), *args, cwd=tmp_path, timeout=180,
                           env={"TOKEN": "s3cr3t-t0ken", "ONLY_ON_CLIENT": "client"})
        assert proc.returncode == 1, proc.stdout + proc.stderr  # `broken` fails for good
        run_id = runs(tmp_path / ".flowctl")[-1]
        rows[executor] = (
            state_rows(tmp_path / ".flowctl", "SELECT step, status, attempts, exit_code, reason, fingerprint "
                       "FROM steps WHERE run_id = ? ORDER BY step", run_id),
            state_rows(tmp_path / ".flowctl", "SELECT step, attempt, kind, outcome, exit_code FROM attempts "
                       "WHERE run_id = ? ORDER BY step, attempt", run_id),
            state_rows(tmp_path / ".flowctl", "SELECT status, counts, root_failure FROM runs WHERE run_id = ?", run_id),
        )
        outputs[executor] = proc
        hosts = {r[4] for r in attempts(tmp_path, run_id)}
        assert all("://" in str(h) for h in hosts) == (executor == "dask"), hosts
        logs = tmp_path / ".flowctl" / "runs" / run_id
        assert not (logs / "extract").exists()  # it printed nothing: no log file
        assert (logs / "broken" / "1.log").read_text() == "broken\n"
        assert (logs / "clean7" / "1.log").read_text() == "7\n"
        assert (tmp_path / "extract.out").read_text() == "hello 2026-12-01 s3cr3t-t0ken\n"
        assert "s3cr3t-t0ken" not in "".join(p.read_text() for p in logs.rglob("*.log"))
        outputs[executor + "-env"] = (logs / "env_check" / "1.log").read_text()
    assert rows["local"] == rows["dask"]
    # The step's environment is the worker's plus what the pipeline declares, not the client's.
    assert (outputs["local-env"], outputs["dask-env"]) == ("client\n", "unset\n")
    dask = outputs["dask"]
    assert "clean3 | 3" in dask.stdout  # -v streams the output back
    assert "workers        tcp://127.0.0.1:" in dask.stdout
    assert f"travel unencrypted to {shared}" in dask.stderr  # TOKEN is a secret, tcp:// has no TLS
    show = run_flowctl("show", "latest", cwd=tmp_path)
    assert show.returncode == 0 and "WORKER" in show.stdout and "tcp://127.0.0.1:" in show.stdout


# -- timeouts, lost workers, lost clients, Ctrl-C ----------------------------------------------

def test_a_timeout_on_a_worker_fails_fast_and_leaves_no_process(tmp_path, shared) -> None:
    path = write(tmp_path, """
        version: 1
        name: slow
        steps:
          slow: {run: 'echo $$ > slow.pid; exec sleep 300', timeout: 1s}
        """)
    proc = run_flowctl("run", str(path), "--dask-scheduler", shared, cwd=tmp_path, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run_id = only_run(tmp_path)
    [(outcome, duration)] = state_rows(tmp_path / ".flowctl", "SELECT outcome, duration FROM attempts WHERE run_id = ?",
                                       run_id)
    assert outcome == "timeout" and float(duration) < 5.0  # type: ignore[arg-type]
    assert not alive(read_pid(tmp_path / "slow.pid"))
    assert pids_with_env("FLOWCTL_RUN_ID", run_id) == []


def test_a_killed_worker_fails_its_attempt_worker_lost_and_the_retry_runs_elsewhere(tmp_path) -> None:
    path = write(tmp_path, """
        version: 1
        name: lost
        steps:
          step:
            run: 'echo $$ >> starts; [ -f once ] && exit 0; touch once; exec sleep 300'
            retries: 1
            retry_delay: 0s
        """)
    proc = start(path, "--executor", "dask", "--dask-workers", "2", "--dask-threads", "1")
    first = read_pid(tmp_path / "starts", limit=120)
    supervisor = int(Path(f"/proc/{first}/stat").read_text().rsplit(")", 1)[1].split()[1])
    server = int(Path(f"/proc/{supervisor}/stat").read_text().rsplit(")", 1)[1].split()[1])
    worker = int(Path(f"/proc/{server}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert b"spawn_main" in Path(f"/proc/{worker}/cmdline").read_bytes()  # the Dask worker process
    os.kill(worker, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    rows = attempts(tmp_path, only_run(tmp_path))
    assert [(r[1], r[2]) for r in rows] == [(1, "worker-lost"), (2, "ok")]
    assert rows[0][4] != rows[1][4]  # on another worker (the killed one came back under a new address)
    assert len((tmp_path / "starts").read_text().split()) == 2  # never silently run again by Dask
    assert not alive(first)
    assert "worker-lost" in out


def test_on_a_shared_scheduler_a_lost_worker_s_attempt_is_never_run_again_by_dask(tmp_path) -> None:
    """Dask reschedules the task of a lost worker (allowed-failures 3, untouched on a shared
    scheduler): the key's claim makes that second start refuse, so the step ran exactly once
    per flowctl attempt."""
    path = write(tmp_path, """
        version: 1
        name: claim
        steps:
          step:
            run: 'echo $$ >> starts; [ -f once ] && exit 0; touch once; exec sleep 300'
            retries: 1
            retry_delay: 0s
        """)
    with local_cluster(n_workers=2, threads=1) as cluster:
        proc = start(path, "--dask-scheduler", str(cluster.scheduler_address))
        first = read_pid(tmp_path / "starts", limit=120)
        worker = first
        for _ in range(3):  # step -> supervisor -> server -> worker
            worker = int(Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[1])
        os.kill(worker, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    rows = attempts(tmp_path, only_run(tmp_path))
    assert [(r[1], r[2]) for r in rows] == [(1, "worker-lost"), (2, "ok")]
    assert len((tmp_path / "starts").read_text().split()) == 2
    assert not alive(first)


LONG = """
    version: 1
    name: long
    steps:
      first: {run: 'echo ran >> first.count'}
      long:
        run: 'echo $$ > long.pid; [ -f long.done ] && exit 0; touch long.done; exec sleep 300'
        needs: [first]
    """


def kill_client_mid_run(tmp_path: Path, scheduler: str, lease: str) -> tuple[str, int]:
    path = write(tmp_path, LONG)
    proc = start(path, "--dask-scheduler", scheduler, "--dask-lease", lease)
    long_pid = read_pid(tmp_path / "long.pid", limit=120)
    run_id = only_run(tmp_path)
    wait_for(lambda: state_rows(tmp_path / ".flowctl", "SELECT 1 FROM steps WHERE run_id = ? AND step = 'first' "
                                "AND status = 'succeeded'", run_id), "first's success to be recorded")
    proc.kill()
    proc.communicate(timeout=60)
    assert alive(long_pid)  # the worker does not know yet
    return run_id, long_pid


def test_a_killed_client_s_steps_stop_after_the_lease_and_resume_finishes_without_rerunning(tmp_path, shared) -> None:
    run_id, long_pid = kill_client_mid_run(tmp_path, shared, "3s")
    wait_for(lambda: not alive(long_pid) and not pids_with_env("FLOWCTL_RUN_ID", run_id),
             "the lease to stop the dead client's step", limit=3 + LEASE_GONE)
    resumed = run_flowctl("run", "pipeline.yaml", "--resume", "--dask-scheduler", shared, cwd=tmp_path, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (tmp_path / "first.count").read_text() == "ran\n"  # finished steps are not run again
    new_run = runs(tmp_path / ".flowctl")[-1]
    assert state_rows(tmp_path / ".flowctl", "SELECT step, status FROM steps WHERE run_id = ? ORDER BY step",
                      new_run) == [("first", "reused"), ("long", "succeeded")]


def test_resume_stops_what_a_killed_client_left_running_before_its_lease_ends(tmp_path, shared) -> None:
    run_id, long_pid = kill_client_mid_run(tmp_path, shared, "10m")
    resumed = run_flowctl("run", "pipeline.yaml", "--resume", "--dask-scheduler", shared, cwd=tmp_path, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"stopping 1 attempt(s) of earlier run(s) {run_id}" in resumed.stdout
    assert not alive(long_pid) and pids_with_env("FLOWCTL_RUN_ID", run_id) == []
    assert (tmp_path / "first.count").read_text() == "ran\n"


def test_a_killed_client_takes_its_own_cluster_and_every_step_with_it(tmp_path) -> None:
    path = write(tmp_path, LONG)
    tag = uuid.uuid4().hex  # inherited by the client's workers, their supervisors and the steps
    proc = start(path, "--executor", "dask", env={"FLOWCTL_TEST_TREE": tag})
    long_pid = read_pid(tmp_path / "long.pid", limit=120)
    proc.kill()
    proc.communicate(timeout=60)
    wait_for(lambda: not pids_with_env("FLOWCTL_TEST_TREE", tag), "the orphaned cluster and its steps to end",
             limit=LEASE_GONE + 30)
    assert not alive(long_pid)


def test_ctrl_c_exits_130_and_leaves_no_process_of_the_run_or_its_cluster(tmp_path) -> None:
    path = write(tmp_path, """
        version: 1
        name: interrupted
        steps:
          a: {run: 'echo $$ > a.pid; exec sleep 300'}
          b: {run: 'echo $$ > b.pid; sleep 300 & wait'}
          c: {run: 'true', needs: [a]}
        """)
    tag = uuid.uuid4().hex  # every process of this run's tree inherits it: client, workers, supervisors, steps
    proc = start(path, "--executor", "dask", "--dask-threads", "1", env={"FLOWCTL_TEST_TREE": tag}, session=True)
    pids = [read_pid(tmp_path / "a.pid", limit=120), read_pid(tmp_path / "b.pid")]
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert not any(alive(p) for p in pids)
    wait_for(lambda: not pids_with_env("FLOWCTL_TEST_TREE", tag), "every process of the run's tree to end",
             limit=LEASE_GONE)
    assert "Traceback" not in err


# -- resources and placement -----------------------------------------------------------------

def test_steps_get_dask_worker_resources_and_one_no_worker_has_is_refused_before_anything_runs(tmp_path, shared) -> None:
    path = write(tmp_path / "ok", """
        version: 1
        name: gpus
        steps:
          g1: {run: 'echo $FLOWCTL_STEP start >> log; sleep 0.5; echo $FLOWCTL_STEP end >> log', resources: {gpu: 1}}
          g2: {run: 'echo $FLOWCTL_STEP start >> log; sleep 0.5; echo $FLOWCTL_STEP end >> log', resources: {gpu: 1}}
          g3: {run: 'echo $FLOWCTL_STEP start >> log; sleep 0.5; echo $FLOWCTL_STEP end >> log', resources: {gpu: 1}}
        """)
    proc = run_flowctl("run", str(path), "--dask-scheduler", shared, cwd=path.parent, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    held = peak = 0  # two workers with gpu=1 each: never three at once, though there are four threads
    for line in (path.parent / "log").read_text().splitlines():
        held += 1 if line.endswith("start") else -1
        peak = max(peak, held)
    assert peak <= 2

    for where, args in (("shared", ["--dask-scheduler", shared]), ("own", ["--executor", "dask"])):
        bad = write(tmp_path / where, """
            version: 1
            name: gpus
            steps:
              first: {run: 'touch ran'}
              big: {run: 'touch ran', resources: {gpu: 2, memory: 4GiB}}
            """)
        proc = run_flowctl("run", str(bad), *args, cwd=bad.parent, timeout=120)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "step 'big' needs" in proc.stderr and "gpu=2" in proc.stderr
        assert not (bad.parent / "ran").exists()


def test_an_adaptive_cluster_grows_with_the_queue_of_ready_steps(tmp_path) -> None:
    steps = "\n".join(f"  s{i}: {{run: 'sleep 1'}}" for i in range(6))
    path = write(tmp_path, f"version: 1\nname: grow\nsteps:\n{steps}\n")
    proc = run_flowctl("run", str(path), "--executor", "dask", "--dask-workers", "0:2", "--dask-threads", "1",
                       cwd=tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hosts = {r[4] for r in attempts(tmp_path, only_run(tmp_path))}
    assert len(hosts) == 2, hosts  # it started with no worker and grew to the maximum


def test_a_worker_that_cannot_see_the_step_s_folder_fails_the_attempt_saying_so(tmp_path, shared) -> None:
    (tmp_path / "data").mkdir()
    path = write(tmp_path, """
        version: 1
        name: unshared
        steps:
          hide: {run: 'rm -r data'}
          use: {run: 'true', cwd: data, needs: [hide]}
        """)
    proc = run_flowctl("run", str(path), "--dask-scheduler", shared, cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    assert f"cannot see the step's working folder {tmp_path / 'data'}" in proc.stdout


# -- choosing the executor ---------------------------------------------------------------------

def test_the_pipeline_s_executor_block_is_used_and_flags_win(tmp_path, shared) -> None:
    path = write(tmp_path, f"""
        version: 1
        name: chosen
        executor: {{type: dask, address: "{shared}"}}
        steps:
          a: {{run: 'true'}}
        """)
    proc = run_flowctl("run", str(path), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0 and f"executor: dask at {shared}" in proc.stdout, proc.stdout + proc.stderr
    proc = run_flowctl("run", str(path), "--executor", "local", cwd=tmp_path, timeout=120)
    assert proc.returncode == 0 and "executor: dask" not in proc.stdout
    assert "://" not in str(attempts(tmp_path, runs(tmp_path / ".flowctl")[-1])[0][4])


# -- foreach items from a step's output (issue 15) ---------------------------------------------

def test_items_from_a_step_s_output_run_on_workers_and_streaming_is_refused(tmp_path, shared) -> None:
    path = write(tmp_path, """
        version: 1
        name: produced
        steps:
          list: {run: 'echo "{\\"id\\": 1}"; echo "{\\"id\\": 2}"; echo listing >&2'}
          each:
            needs: [list]
            foreach: {items_from: {step: list}, key: "${{ item.id }}"}
            run: 'echo "${{ item.id }}" >> seen.txt'
        """)
    proc = run_flowctl("run", str(path), "--dask-scheduler", shared, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted((tmp_path / "seen.txt").read_text().split()) == ["1", "2"]
    folder = tmp_path / ".flowctl" / "runs" / only_run(tmp_path) / "list"
    assert (folder / "stdout.jsonl").read_text() == '{"id": 1}\n{"id": 2}\n'  # its stderr stays in its log
    assert (folder / "1.log").read_text() == "listing\n"
    path.write_text(path.read_text().replace("{step: list}", "{step: list, stream: true}"))
    refused = run_flowctl("run", str(path), "--dask-scheduler", shared, cwd=tmp_path, timeout=120)
    assert refused.returncode == 2 and "step each streams the output of step list" in refused.stderr
    assert "--executor dask does not do" in refused.stderr
