"""Sweeping what attempts leave behind: the rest of a process group, and orphans.

Owns the bookkeeping that makes "no process outlives its step" hold. The local executor tags
each attempt's environment with a token (``procs.TOKEN_VAR``) and, on Linux, is a child
subreaper: a grandchild that left its step's process group with ``setsid`` is reparented to the
runner when its parent dies. ``Sweeper`` lists our children (at most every ``SCAN_EVERY``
seconds, so a burst of tiny steps shares one ``/proc`` read), reads the token of each child we
did not start, and gives the SIGTERM → grace → SIGKILL ladder to every orphan whose attempt has
ended and to what is left of that attempt's group. It reaps the orphans that die. At the end
(``final_pass``) everything of ours is killed at once.

``end_leftovers`` is the same ladder for what an earlier runner left when it was killed itself
(``kill -9``, OOM): processes found by their ``FLOWCTL_RUN_ID`` (``procs.tagged_processes``),
which the next run of the pipeline waits for (``--orphans wait``) and/or ends before starting
anything, so a step never runs twice at once (issue 12). Which runs are dead is not decided
here: the caller holds the pipeline's lock and asks the state store.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flowctl.run import procs

GRACE = 3.0  # seconds from SIGTERM to SIGKILL, unless the executor is given another
SWEEP_INTERVAL = 0.02  # seconds between looks while something of an ended attempt is left
SCAN_EVERY = 0.05  # at most this often we list our children after attempts end
FORGET_AFTER = 2.0  # seconds after SIGKILL after which we stop chasing an unkillable process


class _Leftover:
    """What is left of an ended attempt: its process group and orphans carrying its token."""

    __slots__ = ("give_up_at", "kill_at", "killed", "pgid", "token")

    def __init__(self, pgid: int, token: str, kill_at: float) -> None:
        self.pgid = pgid
        self.token = token
        self.kill_at = kill_at
        self.give_up_at = kill_at + FORGET_AFTER
        self.killed = False


class Sweeper:
    """Find and kill what ended attempts left behind (see the module docstring)."""

    def __init__(self, *, prefix: str, grace: float, own_all: bool, is_direct: Callable[[int], bool]) -> None:
        self.grace = grace
        self._prefix = prefix  # every token of this executor starts with it
        self._own_all = own_all  # every child of the process is ours (flowctl run, not a test runner)
        self._is_direct = is_direct  # a pid the executor started itself and still waits for
        self._ended: dict[str, int] = {}  # token of an ended attempt -> its process group
        self._orphans: dict[int, str | None] = {}  # reparented pid -> its token
        self._leftovers: list[_Leftover] = []
        self._groups: set[int] = set()  # every process group started (one per attempt)
        self._last_scan = 0.0
        self._scan_due: float | None = None

    def started(self, pgid: int) -> None:
        self._groups.add(pgid)

    def ended(self, pgid: int, token: str, *, force: bool) -> None:
        """An attempt's main process was reaped: end the rest of its group and its orphans."""
        self._ended[token] = pgid
        if procs.group_alive(pgid) or token in self._orphans.values():
            left = _Leftover(pgid, token, time.monotonic() + (0 if force else self.grace))
            self._kill(left, signal.SIGKILL if force else signal.SIGTERM)
            self._leftovers.append(left)
        now = time.monotonic()
        if now - self._last_scan >= SCAN_EVERY:
            self.adopt()
        elif self._scan_due is None:
            self._scan_due = self._last_scan + SCAN_EVERY

    def signal_attempt(self, pgid: int, token: str, sig: int) -> None:
        """Signal a running attempt's group and the orphans it made so far."""
        procs.signal_group(pgid, sig)
        self.adopt()
        for pid, owner in self._orphans.items():
            if owner == token:
                procs.kill_process_and_group(pid, sig)

    def kill_leftovers(self) -> None:
        """SIGKILL whatever ended attempts left (second Ctrl-C)."""
        for left in self._leftovers:
            self._kill(left, signal.SIGKILL)

    def next_look(self, now: float) -> float | None:
        """Seconds until the sweeper wants to look again (None: nothing pending)."""
        if self._leftovers:
            return SWEEP_INTERVAL
        if self._scan_due is not None:
            return max(0.0, self._scan_due - now)
        return None

    def tick(self) -> None:
        """Called after each wait: chase leftovers, or do a scan that fell due."""
        if self._leftovers:
            self._sweep()
        elif self._scan_due is not None and time.monotonic() >= self._scan_due:
            self.adopt()

    def final_pass(self) -> bool:
        """SIGKILL everything of ours that is left; True while something still is."""
        for left in self._leftovers:
            self._kill(left, signal.SIGKILL)
        found = self.adopt(kill_all=True)
        return found or any(procs.group_alive(x.pgid) for x in self._leftovers)

    def forget_all(self) -> None:
        self._leftovers.clear()

    def adopt(self, kill_all: bool = False) -> bool:
        """Take note of children we did not start (reparented to us); kill those whose attempt
        ended; reap the ones that died. Returns whether any unknown child of ours was seen."""
        seen = False
        self._last_scan = time.monotonic()
        self._scan_due = None
        for pid in procs.child_pids():
            if self._is_direct(pid):
                continue
            if pid not in self._orphans:
                self._orphans[pid] = procs.process_token(pid)
            token = self._orphans[pid]
            mine = token is not None and token.startswith(self._prefix)
            if procs.reap(pid) is not None:
                self._orphans.pop(pid, None)
                continue
            if not mine and not kill_all:
                continue
            foreign = token is not None or _pgid(pid) not in self._groups
            if kill_all and not mine and not self._own_all and foreign:
                continue  # a child of the host program (e.g. a test runner), not one of ours
            seen = True
            if kill_all:
                procs.kill_process_and_group(pid, signal.SIGKILL)
            elif token is not None and token in self._ended:
                procs.kill_process_and_group(pid, signal.SIGTERM)
                if not any(x.token == token for x in self._leftovers):  # so SIGKILL follows
                    self._leftovers.append(_Leftover(self._ended[token], token, time.monotonic() + self.grace))
        return seen

    def _kill(self, left: _Leftover, sig: int) -> None:
        procs.signal_group(left.pgid, sig)
        for pid, token in self._orphans.items():
            if token == left.token:
                procs.kill_process_and_group(pid, sig)

    def _sweep(self) -> None:
        now = time.monotonic()
        self.adopt()
        keep: list[_Leftover] = []
        for left in self._leftovers:
            theirs = any(t == left.token for t in self._orphans.values())
            if not procs.group_alive(left.pgid) and not theirs:
                continue
            if now >= left.kill_at and not left.killed:
                left.killed = True
                self._kill(left, signal.SIGKILL)
            if now < left.give_up_at:
                keep.append(left)
        self._leftovers = keep


@dataclass(frozen=True, slots=True)
class Ending:
    """How the processes an earlier run left behind ended."""

    by_themselves: int = 0  # ended while we waited for them
    terminated: int = 0  # ended after SIGTERM
    killed: int = 0  # needed SIGKILL
    left: tuple[int, ...] = ()  # pids still alive after SIGKILL (stuck in the kernel)


def end_leftovers(
    found: Sequence[procs.Tagged],
    *,
    wait: float | None,
    grace: float,
    scan: Callable[[], Sequence[procs.Tagged]] = procs.tagged_processes,
) -> Ending:
    """Wait up to ``wait`` seconds (None: for ever; 0: not at all) for ``found`` to end, then
    SIGTERM each with its process group, SIGKILL what is left after ``grace``. Processes of the
    same runs (same run id and runner) that appear meanwhile, started by those being waited
    for, are ended too. Signals go through pidfds where there are some, so a reused pid is never
    hit."""
    runs = {(t.run_id, t.runner_pid) for t in found}
    pending: dict[int, int | None] = {}

    def add(more: Sequence[procs.Tagged]) -> None:
        for t in more:
            if t.pid not in pending and (t.run_id, t.runner_pid) in runs:
                pending[t.pid] = procs.pidfd(t.pid)

    def settle(until: float | None, rescan: bool) -> int:
        """Wait until nothing is pending or ``until``; return how many ended."""
        ended, last_scan = 0, time.monotonic()
        while True:
            for pid, fd in list(pending.items()):
                if procs.exited(fd, pid):
                    _close(pending.pop(pid))
                    ended += 1
            now = time.monotonic()
            if rescan and now - last_scan >= _RESCAN_EVERY:
                add(scan())
                last_scan = now
            if not pending or (until is not None and now >= until):
                return ended
            time.sleep(SWEEP_INTERVAL)

    add(found)
    try:
        waited = 0 if wait == 0 else settle(None if wait is None else time.monotonic() + wait, True)
        terminated = killed = 0
        for _ in range(3):  # a round, then again for what was started meanwhile
            add(scan())
            if not pending:
                break
            _signal_all(pending, signal.SIGTERM)
            terminated += settle(time.monotonic() + grace, False)
            _signal_all(pending, signal.SIGKILL)
            killed += settle(time.monotonic() + FORGET_AFTER, False)
            if pending:
                break  # unkillable (uninterruptible sleep): say so rather than loop
        return Ending(waited, terminated, killed, tuple(sorted(pending)))
    finally:
        for fd in pending.values():
            _close(fd)


_RESCAN_EVERY = 0.5  # while waiting: look for processes the waited-for ones started


def _signal_all(pending: dict[int, int | None], sig: int) -> None:
    for pid, fd in pending.items():
        if procs.exited(fd, pid):
            continue
        procs.signal_group(_pgid(pid), sig)  # what it started without setsid goes too
        procs.signal_exact(pid, fd, sig)


def _close(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except OSError:
        return -1


__all__ = ["FORGET_AFTER", "GRACE", "SCAN_EVERY", "SWEEP_INTERVAL", "Ending", "Sweeper", "end_leftovers"]
