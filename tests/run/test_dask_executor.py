"""The Dask executor in this process, against a real LocalCluster of worker processes (issue 16).

What the end-to-end tests cannot pin down cheaply: the claim that stops Dask from running an
attempt twice, exactly one result per attempt when attempts are cancelled before a worker takes
them, a log that cannot be written stopping the run (exit 74), and the shared log writer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowctl.errors import StorageError
from flowctl.run.events import AttemptOutcome, RunId
from flowctl.run.executors.attemptlog import AttemptLog
from flowctl.run.ports import AttemptKey, AttemptResult, AttemptSpec
from tests.daskhelp import dask_test, local_cluster, require_dask

pytestmark = dask_test


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    with local_cluster(n_workers=2, threads=1) as cluster:
        yield str(cluster.scheduler_address)


@pytest.fixture
def executor(address: str) -> Iterator[object]:
    require_dask()
    from flowctl.run.executors.dask import DaskExecutor
    from flowctl.run.executors.dask_settings import DaskSettings

    with DaskExecutor(DaskSettings(address=address, grace=0.5), run_id=RunId(f"t{time.monotonic_ns()}"),
                      owner="tests") as ex:
        yield ex


def spec(ex: object, step: str, command: str, folder: Path, attempt: int = 1) -> AttemptSpec:
    run_id = ex.run_id  # type: ignore[attr-defined]
    return AttemptSpec(AttemptKey(run_id, step, attempt), ("/bin/sh", "-c", command), {}, str(folder),
                       str(folder / "logs" / step / f"{attempt}.log"))


def collect(ex: object, count: int, limit: float = 60.0) -> list[AttemptResult]:
    results: list[AttemptResult] = []
    deadline = time.monotonic() + limit
    while len(results) < count:
        assert time.monotonic() < deadline, results
        results += ex.wait(1.0)  # type: ignore[attr-defined]
    return results


def test_a_second_start_of_the_same_attempt_is_refused_by_its_claim(tmp_path, address) -> None:
    """What Dask does after a worker loss on a shared scheduler: start the same attempt again."""
    from distributed import Client

    from flowctl.run.executors.dask_worker import PLUGIN, AttemptsPlugin, run_attempt

    payload = {
        "request": {"key": f"claim-{time.monotonic_ns()}:step:1", "argv": ["/bin/sh", "-c", "echo ran >> starts"],
                    "env": {}, "cwd": str(tmp_path), "timeout": None, "grace": 0.5, "lease": 30.0, "secrets": []},
        "topic": "flowctl:tests", "run": "claim", "owner": "tests", "claim": True,
    }
    with Client(address, set_as_default=False) as client:
        client.register_plugin(AttemptsPlugin(), name=PLUGIN)
        first = client.submit(run_attempt, payload, key="first-start", pure=False).result(timeout=60)
        second = client.submit(run_attempt, payload, key="second-start", pure=False).result(timeout=60)
    assert first["outcome"] == "ok"
    assert second["outcome"] == "worker-lost" and "did not run it again" in (second["error"] or "")
    assert (tmp_path / "starts").read_text() == "ran\n"


def test_every_attempt_gets_exactly_one_result_when_the_run_is_cancelled(tmp_path, executor) -> None:
    for i in range(8):  # two slots: most of them never reach a worker
        executor.submit(spec(executor, f"s{i}", f"echo $$ > {i}.pid; exec sleep 300", tmp_path))
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("*.pid")):
        assert time.monotonic() < deadline
        executor.wait(0.1)
    executor.cancel_all()
    results = collect(executor, 8)
    assert sorted(r.key.step for r in results) == [f"s{i}" for i in range(8)]
    assert {r.outcome for r in results} == {AttemptOutcome.CANCELLED}
    assert executor.running() == 0 and executor.wait(0.2) == []


def test_a_log_that_cannot_be_written_stops_the_run_with_a_storage_error(tmp_path, executor) -> None:
    broken = AttemptSpec(AttemptKey(executor.run_id, "loud", 1), ("/bin/sh", "-c", "echo hello"), {}, str(tmp_path),
                         "/dev/full")
    executor.submit(broken)
    deadline = time.monotonic() + 60
    with pytest.raises(StorageError) as info:
        while time.monotonic() < deadline:
            executor.wait(1.0)
    assert "no space left" in info.value.message and info.value.exit_code == 74


def test_the_shared_log_writer_makes_the_file_with_the_first_byte_and_streams_lines(tmp_path) -> None:
    key = AttemptKey(RunId("r"), "s", 1)
    lines: list[str] = []
    log = AttemptLog(str(tmp_path / "s" / "1.log"), key, lambda k, line: lines.append(line))
    log.write(b"")
    assert not (tmp_path / "s").exists()
    log.write(b"one\ntw")
    log.write(b"o\nthree")
    log.close()
    assert (tmp_path / "s" / "1.log").read_text() == "one\ntwo\nthree" and lines == ["one", "two", "three"]
    full = AttemptLog("/dev/full", key, None)
    full.write(b"x" * 10)
    full.close()
    assert full.failure is not None and full.error and "/dev/full" in full.error


def test_waiting_for_a_dead_client_s_attempt_renews_its_lease_so_it_ends_by_itself(tmp_path, executor) -> None:
    """``stop_orphans(wait=None)`` (``--orphans wait``): the orphan's client never renews its 3 s
    lease, so without the waiting client's renewals its supervisor would stop it 3 s in. It is
    still running two leases later (a window is the only way to show that something did not
    happen), then ends by itself when released, and nothing had to be stopped."""
    import threading

    from flowctl.run.executors.dask_worker import run_attempt

    lease = 3.0
    payload = {
        "request": {"key": f"dead:orphan:{time.monotonic_ns()}", "env": {}, "cwd": str(tmp_path), "timeout": None,
                    "argv": ["/bin/sh", "-c", "echo $$ > orphan.pid; while [ ! -f release ]; do sleep 0.05; done; "
                             "echo finished > orphan.end"],
                    "grace": 0.5, "lease": lease, "secrets": []},
        "topic": "flowctl:dead", "run": "dead", "owner": executor.owner, "claim": False,
    }
    future = executor.cluster.client.submit(run_attempt, payload, key=payload["request"]["key"], pure=False)
    deadline = time.monotonic() + 60
    while not (tmp_path / "orphan.pid").exists() or not executor.orphans():
        assert time.monotonic() < deadline, "the orphan never started"
        time.sleep(0.02)
    started = time.monotonic()
    found = executor.orphans()
    assert [a["run"] for a in found] == ["dead"]
    stopped: list[object] = []
    waiter = threading.Thread(target=lambda: stopped.append(executor.stop_orphans(found, wait=None)))
    waiter.start()
    while time.monotonic() < started + 2 * lease:
        assert not (tmp_path / "orphan.end").exists()
        assert waiter.is_alive(), "stop_orphans returned while the orphan still ran"
        time.sleep(0.1)
    (tmp_path / "release").touch()
    waiter.join(timeout=60)
    assert not waiter.is_alive() and stopped == [[]]
    assert (tmp_path / "orphan.end").read_text() == "finished\n"
    assert future.result(timeout=60)["outcome"] == "ok"
