"""The local executor: each attempt is a process group on this machine.

Owns: starting an attempt in its own process group with its output in a log file, waiting for many
attempts at once (a ``pidfd`` per child in one epoll set, plus a self-pipe so a signal
handler can wake the scheduler), timeouts and cancellation (SIGTERM to the group, a grace period,
then SIGKILL), and sweeping what a step leaves behind. On Linux the runner is a child subreaper,
so a grandchild that called ``setsid`` is reparented to us when its parent dies; every attempt's
environment carries a unique token (``procs.TOKEN_VAR``), and ``sweep.Sweeper`` kills an orphan
whose token belongs to an attempt that ended, with its group. ``close`` kills whatever is left.

Output comes back through a pipe: masked (``masking.Masker``) when the attempt has secrets,
reported line by line when it streams (``--stream``), and written to the attempt's log file,
which is created with the first byte: an attempt that prints nothing leaves no log file.
A log that cannot be written (a full disk, a read-only folder) is a storage failure: the
attempt's output is still drained, and ``wait`` raises ``StorageError`` (exit 74) so the
scheduler stops the run instead of running on with output lost (issue 12).
The runner's working folder never changes: each attempt's process moves to its step's folder
itself (``launch.Launcher``). Each attempt's environment is the executor's base (``environ``,
by default the runner's environment when the executor was made) plus ``AttemptSpec.env``.
Everything the executor holds (poller, waker, caches, timers, the sweeper) is its own and is
released by ``close``; use it as a context manager.
Leaves to the scheduler: retries, ordering, what a failure means.
"""

from __future__ import annotations

import errno
import heapq
import os
import signal
import time
from collections.abc import Mapping, Sequence
from itertools import count

from flowctl.errors import StorageError
from flowctl.masking import Masker
from flowctl.run import procs
from flowctl.run.events import AttemptOutcome
from flowctl.run.executors.attemptlog import TAIL_LINES, AttemptLog, read_tail, write_note
from flowctl.run.executors.launch import Launcher
from flowctl.run.executors.sweep import FORGET_AFTER, GRACE, Sweeper
from flowctl.run.executors.waker import Waker
from flowctl.run.ports import AttemptKey, AttemptResult, AttemptSpec, OutputCallback


class _Attempt:
    __slots__ = (
        "done",
        "hold",
        "kill_at",
        "log",
        "masker",
        "override",
        "pid",
        "pidfd",
        "pipe",
        "spec",
        "started",
        "started_at",
        "stdout",
        "token",
    )

    def __init__(self, spec: AttemptSpec, token: str, on_output: OutputCallback | None) -> None:
        self.spec = spec
        self.token = token
        self.pid = 0
        self.pidfd: int | None = None
        self.started = 0.0
        self.started_at = 0.0
        self.override: AttemptOutcome | None = None  # TIMEOUT or CANCELLED once we stop it
        self.kill_at = 0.0
        self.pipe: int | None = None
        self.hold = -1  # our copy of the pipe's write end (see _start)
        self.log = AttemptLog(spec.log_path, spec.key, on_output if spec.stream else None)
        self.masker: Masker | None = None
        self.stdout: _Stdout | None = None  # spec.stdout_path: the command's stdout, apart
        self.done = False


class _Stdout:
    """An attempt's stdout on a pipe of its own, copied as is into ``spec.stdout_path`` (issue
    15: a producer's items; its stderr stays in its log). Like the log's pipe, our copy of the
    write end stays open until the attempt ends."""

    __slots__ = ("file", "hold", "pipe")

    def __init__(self, key: AttemptKey, path: str) -> None:
        self.file = AttemptLog(path, key, None)
        self.file.create()  # made now, empty: a producer that prints nothing has 0 items
        self.pipe, self.hold = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self.pipe, False)

    def drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.pipe, 65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            self.file.write(chunk)

    def close(self) -> None:
        os.close(self.pipe)
        os.close(self.hold)
        self.file.close()


class LocalExecutor:
    """Run attempts as local process groups (see the module docstring)."""

    def __init__(
        self,
        *,
        grace: float = GRACE,
        on_output: OutputCallback | None = None,
        subreaper: bool = True,
        own_all_children: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """``own_all_children``: every child of this process is ours to kill at ``close`` (true
        in ``flowctl run``; not in a test runner, which has children of its own). ``environ``:
        the base of every attempt's environment (default: ours, as it is now)."""
        self.grace = grace
        self.host = os.uname().nodename
        self._on_output = on_output
        self._selector: procs.Poller[_Attempt | None] = procs.Poller()
        self._waker = Waker()
        self._selector.register(self._waker.fd, None)
        self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self._running: dict[AttemptKey, _Attempt] = {}
        self._by_pid: dict[int, _Attempt] = {}
        self._by_token: dict[str, _Attempt] = {}
        self._timers: list[tuple[float, int, _Attempt]] = []
        self._seq = count()
        self._results: list[AttemptResult] = []
        self._prefix = procs.token_prefix()
        self._sweeper = Sweeper(
            prefix=self._prefix, grace=grace, own_all=own_all_children, is_direct=self._by_pid.__contains__
        )
        self._subreaper = subreaper
        self._was_subreaper = procs.set_subreaper(True) if subreaper else False
        self._closed = False
        self._launcher = Launcher(os.environ if environ is None else environ)
        self._storage_failure: StorageError | None = None  # a log could not be written


    # -- the Executor protocol ---------------------------------------------------------------

    def submit(self, spec: AttemptSpec) -> None:
        token = f"{self._prefix}.{next(self._seq)}"
        att = _Attempt(spec, token, self._on_output)
        att.started = time.monotonic()
        att.started_at = time.time()
        try:
            self._start(att)
        except OSError as exc:
            self._close_fds(att)
            failure = write_note(spec.key, spec.log_path, f"could not start: {exc}")
            self._storage_failure = self._storage_failure or failure
            logged = failure is None
            self._results.append(
                AttemptResult(
                    key=spec.key, outcome=AttemptOutcome.ERROR, exit_code=None,
                    started_at=att.started_at, duration=time.monotonic() - att.started,
                    host=self.host, error=_describe(exc, spec), tail=(), logged=logged,
                )
            )
            return
        self._running[spec.key] = att
        self._by_pid[att.pid] = att
        self._by_token[token] = att
        self._sweeper.started(att.pid)
        if spec.timeout is not None:
            heapq.heappush(self._timers, (att.started + spec.timeout, next(self._seq), att))

    def wait(self, timeout: float | None) -> Sequence[AttemptResult]:
        """See ``Executor.wait``. Raises ``StorageError`` once a log could not be written."""
        if not self._results:
            self._poll(timeout)
        if self._storage_failure is not None:
            raise self._storage_failure
        results, self._results = self._results, []
        return results

    def wakeup(self) -> None:
        self._waker.wake()

    def cancel(self, key: AttemptKey, *, force: bool = False) -> None:
        att = self._running.get(key)
        if att is not None:
            self._stop(att, AttemptOutcome.CANCELLED, force=force)

    def cancel_all(self, *, force: bool = False) -> None:
        for att in list(self._running.values()):
            self._stop(att, AttemptOutcome.CANCELLED, force=force)
        if force:
            self._sweeper.kill_leftovers()

    def running(self) -> int:
        return len(self._running)

    def close(self) -> None:
        """Kill every attempt still running and everything our attempts left behind; reap."""
        if self._closed:
            return
        self._closed = True
        for att in list(self._running.values()):
            procs.signal_group(att.pid, signal.SIGKILL)
        deadline = time.monotonic() + FORGET_AFTER
        while True:
            for att in list(self._running.values()):
                if procs.reap(att.pid) is not None:
                    self._forget(att)
            left = self._sweeper.final_pass()
            if not self._running and not left:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.005)
        for att in list(self._running.values()):
            self._forget(att)
        self._sweeper.forget_all()
        self._selector.close()
        self._waker.close()
        os.close(self._devnull)
        if self._subreaper and not self._was_subreaper:
            procs.set_subreaper(False)

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- starting ----------------------------------------------------------------------------

    def _start(self, att: _Attempt) -> None:
        spec = att.spec
        # Output comes through a pipe; the log file (and the step's log folder) is made when
        # the first byte arrives. Creating a file costs far more than spawning on some disks
        # (0.25 ms here, for a folder and a file), and most steps of a big pipeline print nothing.
        # We keep the write end open until the attempt ends: the pipe then never reports EOF,
        # so the child's exit wakes us once (its pidfd), not twice (EOF, then the pidfd).
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            os.set_blocking(read_end, False)
            env = self._launcher.environment(spec.env)
            env[procs.TOKEN_VAR] = att.token
            if spec.stdout_path:
                att.stdout = _Stdout(spec.key, spec.stdout_path)
                if att.stdout.file.failure is not None:
                    raise OSError(att.stdout.file.error)
            att.pid = self._launcher.spawn(spec.argv, env, spec.cwd, stdin_fd=self._devnull, out_fd=write_end,
                                           stdout_fd=att.stdout.hold if att.stdout else None)
        except BaseException:
            os.close(read_end)
            os.close(write_end)
            out, att.stdout = att.stdout, None
            if out is not None:
                out.close()
            raise
        if spec.secrets:
            att.masker = Masker(spec.secrets)
        att.pipe = read_end
        att.hold = write_end
        self._selector.register(read_end, att)
        if att.stdout is not None:
            self._selector.register(att.stdout.pipe, att)
        att.pidfd = procs.pidfd(att.pid)
        if att.pidfd is not None:
            self._selector.register(att.pidfd, att)

    # -- waiting -----------------------------------------------------------------------------

    def _poll(self, timeout: float | None) -> None:
        now = time.monotonic()
        limit = timeout
        if self._timers:
            limit = _min(limit, max(0.0, self._timers[0][0] - now))
        look = self._sweeper.next_look(now)
        if look is not None:
            limit = _min(limit, look)
        if self._running and any(a.pidfd is None for a in self._running.values()):
            limit = _min(limit, 0.01)  # no pidfd (old kernel): poll
        if not self._running and look is None and timeout is None and not self._timers:
            limit = 0.0
        for fd, att in self._selector.poll(limit):
            if att is None:
                self._waker.drain()
            elif att.done:  # ended earlier in this batch (its pipe and pidfd were both ready)
                continue
            elif fd == att.pipe:
                self._read_output(att)
            elif att.stdout is not None and fd == att.stdout.pipe:
                self._read_stdout(att)
            else:
                self._check_exit(att)
        if any(a.pidfd is None for a in self._running.values()):
            for att in list(self._running.values()):
                if att.pidfd is None:
                    self._check_exit(att)
        self._fire_timers()
        self._sweeper.tick()

    def _check_exit(self, att: _Attempt) -> None:
        code = procs.reap(att.pid)
        if code is None:
            return
        self._finish(att, code)

    def _finish(self, att: _Attempt, code: int) -> None:
        spec = att.spec
        if att.pipe is not None:
            self._read_output(att, final=True)
        if att.stdout is not None:
            self._read_stdout(att)
        if att.override is not None:
            outcome = att.override
        elif code == 0:
            outcome = AttemptOutcome.OK
        else:
            outcome = AttemptOutcome.FAILED
        self._forget(att)
        # The child is gone; whatever is left in its group or among the orphans it made goes too
        # (at once if we were already killing it).
        force = att.override is not None and time.monotonic() >= att.kill_at
        self._sweeper.ended(att.pid, att.token, force=force)
        tail = att.log.tail() if outcome is not AttemptOutcome.OK else ()
        self._results.append(
            AttemptResult(
                key=spec.key, outcome=outcome, exit_code=code, started_at=att.started_at,
                duration=time.monotonic() - att.started, host=self.host, tail=tail,
                error=att.log.error, logged=att.log.logged,
            )
        )

    def _forget(self, att: _Attempt) -> None:
        att.done = True
        self._running.pop(att.spec.key, None)
        self._by_pid.pop(att.pid, None)
        self._by_token.pop(att.token, None)
        self._close_fds(att)

    def _close_fds(self, att: _Attempt) -> None:
        for fd in (att.pidfd, att.pipe):
            if fd is not None:
                self._selector.unregister(fd)
                os.close(fd)
        att.pidfd = att.pipe = None
        if att.hold >= 0:
            os.close(att.hold)
            att.hold = -1
        att.log.close()
        out, att.stdout = att.stdout, None
        if out is not None:
            self._selector.unregister(out.pipe)
            out.close()

    # -- output ------------------------------------------------------------------------------

    def _read_output(self, att: _Attempt, final: bool = False) -> None:
        assert att.pipe is not None
        while True:
            try:
                chunk = os.read(att.pipe, 65536)
            except BlockingIOError:
                chunk = None
            if not chunk:
                break
            att.log.write(att.masker.feed(chunk) if att.masker else chunk)
        if final and att.masker is not None:
            att.log.write(att.masker.finish())
        if att.log.failure is not None and self._storage_failure is None:
            self._storage_failure = att.log.failure

    def _read_stdout(self, att: _Attempt) -> None:
        assert att.stdout is not None
        att.stdout.drain()
        if att.stdout.file.failure is not None and self._storage_failure is None:
            self._storage_failure = att.stdout.file.failure

    # -- timeouts, cancellation, sweeping ----------------------------------------------------

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, att = heapq.heappop(self._timers)
            if att.done:
                continue
            if att.override is None:
                self._stop(att, AttemptOutcome.TIMEOUT, force=False)
            elif now >= att.kill_at:
                self._signal_attempt(att, signal.SIGKILL)

    def _stop(self, att: _Attempt, why: AttemptOutcome, *, force: bool) -> None:
        if att.done:
            return
        if att.override is None:
            att.override = why
        if force:
            att.kill_at = time.monotonic()
            self._signal_attempt(att, signal.SIGKILL)
            return
        if att.kill_at == 0.0:
            att.kill_at = time.monotonic() + self.grace
            heapq.heappush(self._timers, (att.kill_at, next(self._seq), att))
            self._signal_attempt(att, signal.SIGTERM)

    def _signal_attempt(self, att: _Attempt, sig: int) -> None:
        self._sweeper.signal_attempt(att.pid, att.token, sig)


def _min(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)


def _describe(exc: OSError, spec: AttemptSpec) -> str:
    if not os.path.isdir(spec.cwd):
        return f"working directory does not exist: {spec.cwd}"
    if exc.errno == errno.E2BIG:  # a foreach item is passed in the environment (trial 15)
        size, name = max([(len(v.encode()), f"variable {k}") for k, v in spec.env.items()]
                         + [(len(a.encode()), "an argument") for a in spec.argv])
        return (f"too large to start ({exc.strerror}): {name} holds {size / 1024:.0f} KiB, and Linux takes at "
                "most 128 KiB in one; pass large values as files (with foreach `batch:` the items come in one)")
    if exc.strerror and not exc.filename:
        return f"{exc.strerror}: {spec.argv[0]}"
    return str(exc)


__all__ = ["TAIL_LINES", "LocalExecutor", "read_tail"]
