"""What every ``Executor`` guarantees (``run/ports.py``), checked on each executor with real
processes: the local one, and the Dask one against a real LocalCluster.

An attempt starts with its environment (additions over the executor's base), in its folder,
with its log; a timeout and a cancel end the whole process group; every attempt submitted gets
exactly one result, whatever happened to it; results are values carrying the attempt's key.
Tests synchronise on files the attempts write (a deadline only guards against hanging).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flowctl.run.events import AttemptOutcome, RunId
from flowctl.run.ports import AttemptKey, AttemptResult, AttemptSpec, Executor
from tests.daskhelp import dask_test, local_cluster, require_dask

LIMIT = 60.0  # seconds: only a bound against hanging


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    with local_cluster(n_workers=1, threads=4) as cluster:
        yield str(cluster.scheduler_address)


@pytest.fixture(params=["local", pytest.param("dask", marks=dask_test)])
def make(request: pytest.FixtureRequest) -> Iterator[Callable[[], Executor]]:
    """A factory of executors of one kind; each is closed at the end of the test."""
    made: list[Executor] = []
    run_id = RunId(f"c{time.monotonic_ns()}")

    def build(grace: float = 0.5) -> Executor:
        if request.param == "local":
            from flowctl.run.executors.local import LocalExecutor

            ex: Executor = LocalExecutor(grace=grace)
        else:
            require_dask()
            from flowctl.run.executors.dask import DaskExecutor
            from flowctl.run.executors.dask_settings import DaskSettings

            dask = DaskExecutor(DaskSettings(address=request.getfixturevalue("dask_address"), grace=grace),
                                run_id=run_id, owner="contract")
            dask.open()
            ex = dask
        made.append(ex)
        return ex

    build.run_id = run_id  # type: ignore[attr-defined]
    yield build
    for ex in made:
        ex.close()


def spec(make: Callable[[], Executor], step: str, command: str, folder: Path, **kw: object) -> AttemptSpec:
    run_id = make.run_id  # type: ignore[attr-defined]
    return AttemptSpec(AttemptKey(run_id, step, 1), ("/bin/sh", "-c", command), kw.pop("env", {}),  # type: ignore[arg-type]
                       str(folder), str(folder / "logs" / step / "1.log"), **kw)  # type: ignore[arg-type]


def collect(ex: Executor, count: int) -> list[AttemptResult]:
    results: list[AttemptResult] = []
    deadline = time.monotonic() + LIMIT
    while len(results) < count:
        assert time.monotonic() < deadline, results
        results += ex.wait(0.5)
    return results


def wait_file(path: Path, ex: Executor | None = None) -> str:
    deadline = time.monotonic() + LIMIT
    while not (path.exists() and (text := path.read_text()).endswith("\n")):
        assert time.monotonic() < deadline, f"{path} never appeared"
        if ex is not None:
            assert ex.wait(0.05) == [], "the attempt ended before it was ready"
        else:
            time.sleep(0.01)
    return text


def gone(pid: int) -> bool:
    """Whether ``pid`` is gone (a zombie counts as gone), waiting up to LIMIT for it."""
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                if fh.read().rsplit(b")", 1)[-1].split()[0] in (b"Z", b"X"):
                    return True
        except OSError:
            return True
        time.sleep(0.01)
    return False


def test_an_attempt_runs_in_its_folder_with_its_environment_and_writes_its_log(make, tmp_path) -> None:
    ex = make()
    folder = tmp_path / "work dir"  # a space: the folder travels quoted
    folder.mkdir()
    here = os.getcwd()
    ex.submit(spec(make, "a", 'pwd; echo "extra=$EXTRA path=${PATH:+set}"', folder, env={"EXTRA": "it's here"}))
    [result] = collect(ex, 1)
    assert result.outcome is AttemptOutcome.OK and result.exit_code == 0 and result.key.step == "a"
    assert (folder / "logs" / "a" / "1.log").read_text() == f"{folder}\nextra=it's here path=set\n"
    assert os.getcwd() == here


def test_a_timeout_kills_the_whole_process_group(make, tmp_path) -> None:
    ex = make()
    ex.submit(spec(make, "slow", "sleep 300 & echo $! > bg.pid; exec sleep 300", tmp_path, timeout=0.5))
    [result] = collect(ex, 1)
    assert result.outcome is AttemptOutcome.TIMEOUT
    assert gone(int(wait_file(tmp_path / "bg.pid"))), "the attempt's background child outlived its timeout"


def test_cancel_ends_one_attempt_and_its_group_and_leaves_the_others(make, tmp_path) -> None:
    ex = make()
    os.mkfifo(tmp_path / "fifo")
    ex.submit(spec(make, "victim", "sleep 300 & echo $! > bg.pid; exec sleep 300", tmp_path))
    ex.submit(spec(make, "other", "echo go > other.ready; read line < fifo", tmp_path))
    background = int(wait_file(tmp_path / "bg.pid", ex))
    wait_file(tmp_path / "other.ready", ex)
    ex.cancel(AttemptKey(make.run_id, "victim", 1))  # type: ignore[attr-defined]
    [result] = collect(ex, 1)
    assert result.key.step == "victim" and result.outcome is AttemptOutcome.CANCELLED
    assert gone(background)
    assert ex.running() == 1
    with open(tmp_path / "fifo", "w") as fh:  # let the other one finish on its own
        fh.write("done\n")
    [other] = collect(ex, 1)
    assert other.key.step == "other" and other.outcome is AttemptOutcome.OK


def test_every_attempt_gets_exactly_one_result(make, tmp_path) -> None:
    ex = make()
    specs = [
        spec(make, "ok", "true", tmp_path),
        spec(make, "fails", "exit 3", tmp_path),
        spec(make, "times-out", "exec sleep 300", tmp_path, timeout=0.3),
        spec(make, "cancelled", "echo > cancelled.ready; exec sleep 300", tmp_path),
        spec(make, "nowhere", "true", tmp_path / "missing"),
    ]
    for s in specs:
        ex.submit(s)
    wait_file(tmp_path / "cancelled.ready")
    key = AttemptKey(make.run_id, "cancelled", 1)  # type: ignore[attr-defined]
    ex.cancel(key)
    ex.cancel(key)  # twice: still one result
    results = collect(ex, len(specs))
    ex.cancel(AttemptKey(make.run_id, "ok", 1))  # type: ignore[attr-defined]  # over: nothing to do
    assert ex.wait(0.3) == [] and ex.running() == 0
    outcomes = {r.key.step: (r.outcome, r.exit_code) for r in results}
    assert len(results) == len(outcomes) == len(specs)
    assert outcomes["ok"] == (AttemptOutcome.OK, 0)
    assert outcomes["fails"] == (AttemptOutcome.FAILED, 3)
    assert outcomes["times-out"][0] is AttemptOutcome.TIMEOUT
    assert outcomes["cancelled"][0] is AttemptOutcome.CANCELLED
    assert outcomes["nowhere"][0] is AttemptOutcome.ERROR


def test_close_stops_whatever_still_runs(make, tmp_path) -> None:
    ex = make()
    ex.submit(spec(make, "forever", "sleep 300 & echo $! > bg.pid; exec sleep 300", tmp_path))
    background = int(wait_file(tmp_path / "bg.pid", ex))
    ex.close()
    assert gone(background)


def test_a_forced_cancel_kills_at_once_what_ignores_sigterm(make, tmp_path) -> None:
    """What a fault injector does: no grace period (here 300 s, far past the test's limit)."""
    ex = make(grace=300.0)
    ex.submit(spec(make, "deaf", "trap '' TERM; echo $$ > deaf.pid; exec sleep 300", tmp_path))
    pid = int(wait_file(tmp_path / "deaf.pid", ex))
    ex.cancel(AttemptKey(make.run_id, "deaf", 1), force=True)  # type: ignore[attr-defined]
    [result] = collect(ex, 1)
    assert result.outcome is AttemptOutcome.CANCELLED and result.exit_code in (137, -9, None)
    assert gone(pid)
