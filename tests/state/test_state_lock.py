"""The overlap lock: held across processes, released by the kernel on kill -9, never by pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from flowctl.errors import ExitCode, LockedError
from flowctl.state import lock
from tests.conftest import REPO

HOLDER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    from flowctl.state import lock
    held = lock.acquire({state!r}, "etl", run_id="run-holder")
    print("locked", flush=True)
    time.sleep(60)
    """
)


def start_holder(state_dir):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(repo=str(REPO), state=str(state_dir))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_taker_gets_exit_75_naming_the_holder(tmp_path):
    proc = start_holder(tmp_path)
    try:
        with pytest.raises(LockedError) as info:
            lock.acquire(tmp_path, "etl", run_id="second")
        assert info.value.exit_code == ExitCode.LOCKED == 75
        assert "run-holder" in info.value.message and f"pid {proc.pid}" in info.value.message
        # The one way out offered is to wait: another --state-dir would let two runs of one
        # pipeline write the same outputs at once (issue 13 dropped that hint).
        assert info.value.hint == "wait for it with --wait [DURATION] (`flowctl run`, `flowctl dlq replay`)"
        assert "state-dir" not in info.value.message + str(info.value.hint)
        assert lock.is_locked(tmp_path, "etl")
    finally:
        proc.kill()
        proc.wait()


def test_kill_9_releases_the_lock(tmp_path):
    proc = start_holder(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not lock.is_locked(tmp_path, "etl")
    with lock.held(tmp_path, "etl", run_id="next") as taken:
        assert taken.held
        assert json.loads(taken.path.read_text())["run_id"] == "next"


def test_a_stale_pid_in_the_file_does_not_hold_the_lock(tmp_path):
    """The file names a live pid (ours) but nobody holds the flock: the lock is free."""
    path = lock.lock_path(tmp_path, "etl")
    path.write_text(json.dumps({"run_id": "old", "pid": os.getpid(), "host": "h", "since": 1.0}))
    assert not lock.is_locked(tmp_path, "etl")
    with lock.held(tmp_path, "etl", run_id="mine"):
        assert lock.read_holder(path).run_id == "mine"


def _waiting_in_acquire(thread: threading.Thread) -> bool:
    """Whether ``thread`` is inside ``lock.acquire`` (its frames, read from outside)."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code is lock.acquire.__code__:
            return True
        frame = frame.f_back
    return False


def test_wait_takes_the_lock_once_the_holder_exits(tmp_path):
    proc = start_holder(tmp_path)
    ending = threading.Event()  # set just before the holder is told to go
    got: list[bool] = []  # whether it was, when the waiter got the lock

    def waiter() -> None:
        with lock.held(tmp_path, "etl", run_id="waiter", wait=60):
            got.append(ending.is_set())

    thread = threading.Thread(target=waiter)
    thread.start()
    deadline = time.monotonic() + 30
    while not _waiting_in_acquire(thread):  # readiness: the waiter is waiting, not about to
        assert time.monotonic() < deadline and thread.is_alive(), "the waiter never waited"
        time.sleep(0.01)
    assert not got  # the holder still holds it
    ending.set()
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    thread.join(60)
    assert not thread.is_alive() and got == [True]  # taken once the holder was gone, not before


def test_wait_with_a_limit_gives_up(tmp_path):
    proc = start_holder(tmp_path)
    try:
        start = time.monotonic()
        with pytest.raises(LockedError, match=r"after waiting 0\.2s"):
            lock.acquire(tmp_path, "etl", wait=0.2)
        assert time.monotonic() - start < 30  # gave up (far from the holder's 60 s), on a busy machine too
    finally:
        proc.kill()
        proc.wait()


def test_locks_are_per_pipeline_and_file_names_are_safe(tmp_path):
    with lock.held(tmp_path, "a/b c"), lock.held(tmp_path, "other"):
        assert lock.lock_path(tmp_path, "a/b c").name == "a_b_c.lock"
        assert lock.is_locked(tmp_path, "a/b c") and lock.is_locked(tmp_path, "other")
    assert not lock.is_locked(tmp_path, "other")


def test_child_processes_do_not_inherit_the_lock(tmp_path):
    with lock.held(tmp_path, "etl"):
        child = subprocess.Popen(["sleep", "30"], close_fds=False)
    try:
        assert not lock.is_locked(tmp_path, "etl")
    finally:
        child.kill()
        child.wait()
