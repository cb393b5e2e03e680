"""Helpers for the ``dask``-marked tests: a real LocalCluster of worker processes on 127.0.0.1
(no network), scanning the machine's processes, reading a run's state rows, waiting on events.

A test that kills nothing shares one cluster per module (starting one costs seconds); a test
that kills a worker starts its own.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import tool_missing

if TYPE_CHECKING:
    from distributed import LocalCluster

dask_test = pytest.mark.dask


def require_dask() -> None:
    """Skip without the ``flowctl[dask]`` extra on a developer's machine; fail under CI=true."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        tool_missing("dask[distributed] is not installed: pip install 'flowctl[dask]'")


@contextmanager
def local_cluster(n_workers: int = 2, threads: int = 2, resources: Mapping[str, float] | None = None) -> Iterator[LocalCluster]:
    """``LocalCluster(processes=True)`` on 127.0.0.1: a stand-in for a shared cluster."""
    require_dask()
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers, threads_per_worker=threads, processes=True, host="127.0.0.1",
        dashboard_address=":0", worker_dashboard_address=None, memory_limit=0,
        resources=dict(resources) if resources else None, silence_logs=logging.CRITICAL,
    )
    try:
        yield cluster
    finally:
        cluster.close()


def pids_with_env(name: str, value: str) -> list[int]:
    """Processes of this machine (zombies excluded) whose environment has ``name=value``."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[-1].split()[0]
        except OSError:
            continue
        if needle in env and state not in (b"Z", b"X"):
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def wait_for(check: Callable[[], object], what: str, limit: float = 60.0) -> object:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``limit`` s."""
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def read_pid(path: Path, limit: float = 60.0) -> int:
    wait_for(lambda: path.exists() and path.read_text().strip(), f"{path.name} to be written", limit)
    return int(path.read_text().split()[0])


def state_rows(state_dir: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{state_dir / 'state.db'}?mode=ro", uri=True) as conn:
        return conn.execute(sql, args).fetchall()


def runs(state_dir: Path) -> list[str]:
    return [str(r[0]) for r in state_rows(state_dir, "SELECT run_id FROM runs ORDER BY started_at")]
