"""``Sweeper`` on its own, with real processes: whatever a step leaves behind (a ``setsid``
child, a ``nohup`` child, a daemon made by a double fork, a child still running in the step's
group, a child that ignores SIGTERM) is gone once the sweeper settles, and nothing else is.

The test process plays the local executor's part around the sweeper: it is a child subreaper,
starts each attempt in its own process group with a token in its environment, reaps the
attempt's main process and tells the sweeper (``ended``), then lets it work (``next_look`` /
``tick``) until it has nothing left to do. Children say they are ready by writing their pid
to a file (tests/bin/sleepit.py ``leave``/``ready``); "survives" is read from /proc: a live
process whose environment carries the attempt's token.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

from flowctl.run import procs
from flowctl.run.executors.sweep import Sweeper

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and a child subreaper")

SLEEPIT = str(Path(__file__).resolve().parent.parent / "bin" / "sleepit.py")
SETTLE_WITHIN = 30.0  # seconds; only a bound against hanging, never what a test measures
KINDS = ("setsid", "nohup", "double-fork", "stay")


def with_token(token: str, *, prefix: bool = False) -> list[int]:
    """Live processes (zombies excluded) whose environment carries ``token``."""
    want = f"{procs.TOKEN_VAR}={token}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                items = fh.read().split(b"\0")
        except OSError:
            continue
        if any(item.startswith(want) if prefix else item == want for item in items) and procs.is_alive(int(entry)):
            found.append(int(entry))
    return found


def wait_for_file(path: Path) -> str:
    """The text of ``path`` once it holds a whole line (an appending writer may be mid-write)."""
    deadline = time.monotonic() + SETTLE_WITHIN
    while not (path.exists() and (text := path.read_text()).endswith("\n")):
        assert time.monotonic() < deadline, f"{path} never got a line"
        time.sleep(0.002)
    return text


class Attempt:
    def __init__(self, proc: subprocess.Popen[bytes], token: str, pidfile: Path) -> None:
        self.proc = proc
        self.token = token
        self.pidfile = pidfile

    @property
    def child(self) -> int:
        """The pid of the child it left (once that child is ready)."""
        return int(wait_for_file(self.pidfile))


class Executor:
    """The part of ``LocalExecutor`` that feeds the sweeper, and nothing more."""

    def __init__(self, folder: Path, grace: float) -> None:
        self.folder = folder
        self.prefix = f"sweeptest.{os.getpid()}.{time.monotonic_ns():x}"
        self._seq = count()
        self._direct: set[int] = set()
        self.sweeper = Sweeper(prefix=self.prefix, grace=grace, own_all=False, is_direct=self._direct.__contains__)

    def start(self, how: str, *flags: str) -> Attempt:
        token = f"{self.prefix}.{next(self._seq)}"
        pidfile = self.folder / f"{token}.pid"
        proc = subprocess.Popen(
            [sys.executable, SLEEPIT, "leave", how, str(pidfile), *flags],
            env={**os.environ, procs.TOKEN_VAR: token}, process_group=0,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self._direct.add(proc.pid)
        self.sweeper.started(proc.pid)
        return Attempt(proc, token, pidfile)

    def reap(self, attempt: Attempt) -> None:
        """Wait for the attempt's main process (it exits by itself, or was signalled)."""
        attempt.proc.wait(timeout=SETTLE_WITHIN)
        self._direct.discard(attempt.proc.pid)

    def end(self, attempt: Attempt, *, force: bool = False) -> None:
        """Reap the attempt's main process and tell the sweeper, as the executor does."""
        self.reap(attempt)
        self.sweeper.ended(attempt.proc.pid, attempt.token, force=force)

    def settle(self) -> float:
        """Let the sweeper work until it wants nothing more; returns how long that took."""
        t0 = time.monotonic()
        while (look := self.sweeper.next_look(time.monotonic())) is not None:
            assert time.monotonic() - t0 < SETTLE_WITHIN, "the sweeper never settled"
            time.sleep(look)
            self.sweeper.tick()
        return time.monotonic() - t0


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[Executor]:
    was = procs.set_subreaper(True)
    ex = Executor(tmp_path, grace=5.0)
    try:
        yield ex
    finally:  # a failed test must not leave sleepers behind
        for pid in with_token(ex.prefix, prefix=True):
            procs.kill_process_and_group(pid, signal.SIGKILL)
        ex.sweeper.final_pass()
        procs.set_subreaper(was)


@pytest.mark.parametrize("how", KINDS)
def test_what_a_finished_step_leaves_behind_is_swept(executor: Executor, how: str) -> None:
    attempt = executor.start(how)
    child = attempt.child
    executor.reap(attempt)
    assert attempt.proc.returncode == 0
    assert with_token(attempt.token) == [child], "the test has no teeth: nothing was left behind"
    executor.sweeper.ended(attempt.proc.pid, attempt.token, force=False)
    executor.settle()
    assert with_token(attempt.token) == []
    assert not procs.is_alive(child)


@pytest.mark.parametrize("how", ["stay", "setsid", "double-fork"])
def test_a_child_that_ignores_sigterm_is_killed_once_the_grace_is_over(executor: Executor, how: str) -> None:
    executor.sweeper.grace = grace = 0.5
    attempt = executor.start(how, "deaf")
    child = attempt.child
    executor.reap(attempt)
    assert with_token(attempt.token) == [child]
    t0 = time.monotonic()
    executor.sweeper.ended(attempt.proc.pid, attempt.token, force=False)
    # SIGTERM reaches it (it notes that; an orphan still in its step's group may be sent it
    # more than once, through the group and as an adopted orphan), and it is still there:
    # SIGKILL waits for a later tick, and the test is what ticks.
    assert set(wait_for_file(Path(f"{attempt.pidfile}.term")).split()) == {str(child)}
    assert with_token(attempt.token) == [child]
    executor.settle()
    assert with_token(attempt.token) == []
    took = time.monotonic() - t0  # a lower bound only: SIGKILL may not come before the grace
    assert took >= grace, f"gone {took:.3f}s after its step ended: SIGKILL came before the {grace}s grace"


def test_a_forced_end_kills_at_once_without_sigterm(executor: Executor) -> None:
    """A timeout whose own grace is already over: the rest of the attempt gets SIGKILL."""
    attempt = executor.start("stay", "deaf")
    child = attempt.child
    procs.signal_group(attempt.proc.pid, signal.SIGKILL)  # what the executor does at kill time
    executor.end(attempt, force=True)
    executor.settle()
    assert with_token(attempt.token) == []
    assert not procs.is_alive(child)
    assert not Path(f"{attempt.pidfile}.term").exists()


def test_cancelling_a_running_attempt_reaches_the_daemon_it_made(executor: Executor) -> None:
    attempt = executor.start("double-fork", "linger")
    child = attempt.child  # reparented to us already: its parent (the middle process) exited
    executor.sweeper.signal_attempt(attempt.proc.pid, attempt.token, signal.SIGTERM)
    executor.end(attempt)
    executor.settle()
    assert with_token(attempt.token) == []
    assert attempt.proc.returncode == -signal.SIGTERM
    assert not procs.is_alive(child)


def test_ending_one_attempt_leaves_another_attempts_children_alone(executor: Executor) -> None:
    """Tokens decide: the setsid child and the daemon of a step that still runs survive the
    sweep of an ended step (children of every kind at once), until their own step ends."""
    ended = [executor.start(how) for how in KINDS]
    running = [executor.start(how, "linger") for how in ("setsid", "double-fork")]
    kept = {a.token: sorted([a.proc.pid, a.child]) for a in running}  # the step and its child
    gone = [a.child for a in ended]
    for attempt in ended:
        executor.end(attempt)
    executor.settle()
    assert [with_token(a.token) for a in ended] == [[]] * len(ended)
    assert not any(procs.is_alive(pid) for pid in gone)
    assert {a.token: sorted(with_token(a.token)) for a in running} == kept
    for attempt in running:
        attempt.proc.terminate()
        executor.end(attempt)
    executor.settle()
    assert with_token(executor.prefix, prefix=True) == []


def test_the_final_pass_kills_everything_left_at_once(executor: Executor) -> None:
    """Closing the executor (second Ctrl-C, or the end of the run) does not wait for graces."""
    attempts = [executor.start(how, "deaf") for how in ("stay", "setsid")]
    children = [a.child for a in attempts]
    for attempt in attempts:
        executor.reap(attempt)
    assert sorted(with_token(executor.prefix, prefix=True)) == sorted(children)
    for attempt in attempts:
        executor.sweeper.ended(attempt.proc.pid, attempt.token, force=False)
    deadline = time.monotonic() + SETTLE_WITHIN
    while executor.sweeper.final_pass():
        assert time.monotonic() < deadline, "the final pass never finished"
    assert with_token(executor.prefix, prefix=True) == []
