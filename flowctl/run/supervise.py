"""The supervisor of an attempt on a remote worker: one small process per attempt.

A Dask worker runs Python functions in threads and cannot stop one (``Future.cancel()`` never
stops a running task), its Nanny reaps nothing a dead worker leaves behind, and a lost worker's
task may be re-run elsewhere. So flowctl never runs a step's command inside the worker: each
attempt gets a supervisor process of its own, which

* starts the command in its own session (``setsid``), its output on a pipe, the worker's own
  environment plus what the pipeline declares, in the step's folder — checking first that the
  worker can see that folder at all (flowctl assumes a shared filesystem);
* masks secrets in the output (``masking.Masker``) before it sends a byte anywhere;
* enforces the timeout, and stops the attempt on request: SIGTERM to the group, a grace period,
  SIGKILL;
* kills the whole group when the worker is gone (its end of the attempt's socket closes: the
  kernel does that for a ``kill -9`` too) or when the client is gone: the client renews a lease
  through the worker (``l`` messages); no renewal for ``lease`` seconds and the attempt is stopped;
* is a child subreaper, so what the command leaves behind (daemons, ``setsid``, double forks)
  is reparented to it and killed before it reports: no process of the attempt outlives it.

Starting a Python interpreter per attempt costs 10–25 ms of CPU, over the per-attempt budget on
its own, so supervisors are forked from a small per-worker server (``python -m
flowctl.run.supervise FD``, single-threaded, started once per worker by ``Supervisors``): a
fork of it costs about a millisecond. The server takes a request and one end of a socket pair
per attempt over its control socket (``SCM_RIGHTS``) and forks; it exits when the worker
closes the control socket (or dies).

The wire format on an attempt's socket (``SOCK_SEQPACKET``: one message per send) is a one-byte
type and a body: from the supervisor ``o``+bytes (masked output), ``r``+JSON (the result, last);
to it ``c`` (cancel: TERM, grace, KILL), ``k`` (kill now), ``l`` (the lease was renewed).
Leaves to others: what the result means (the scheduler), relaying output and the result to the
client (``executors/dask_worker.py``).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from typing import NotRequired, TypedDict

from flowctl.masking import Masker
from flowctl.run import procs
from flowctl.spec.chaos import ENV_VAR as CHAOS_ENV

CHUNK = 32768  # bytes of output per message
_SIGNALS_TO_RESET = (
    signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD,
)
_PR_SET_CHILD_SUBREAPER = 36
_CHILDREN = "/proc/self/task/{pid}/children"


class Request(TypedDict):
    """What a supervisor needs to run one attempt (JSON on the control socket)."""

    key: str  # the attempt's key: <run-id>:<step>[:<item>]:<attempt>
    argv: list[str]
    env: dict[str, str]  # added over the worker's own environment
    cwd: str
    timeout: float | None
    grace: float
    lease: float
    secrets: list[str]
    stdout: NotRequired[str]  # non-empty: the command's stdout goes to this file, apart (``AttemptSpec.stdout_path``)


class Result(TypedDict, total=False):
    """How the attempt ended: outcome is an ``AttemptOutcome`` value."""

    outcome: str
    exit_code: int | None
    started_at: float
    duration: float
    error: str | None
    output_bytes: int


# -- the per-worker server -------------------------------------------------------------------


class Supervisors:
    """The worker's side of the server: started on first use, closed with the worker.

    ``start`` hands the server a request and returns this side of the attempt's socket.
    Thread-safe: the worker runs attempts in several threads.
    """

    def __init__(self, python: str = sys.executable) -> None:
        self._python = python
        self._lock = threading.Lock()
        self._ctl: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, request: Request) -> socket.socket:
        """Fork a supervisor for ``request``; OSError when the server cannot be reached."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            body = json.dumps(request).encode()
            with self._lock:
                ctl = self._server()
                socket.send_fds(ctl, [body], [theirs.fileno()])
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        return mine

    def _server(self) -> socket.socket:
        proc = self._proc
        if self._ctl is not None and proc is not None and proc.poll() is None:
            return self._ctl
        self.close()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # Its own session: a Ctrl-C in the terminal that started a local cluster reaches
            # flowctl, which cancels; it must not reach the supervisors or the steps directly.
            self._proc = subprocess.Popen(
                [self._python, "-m", "flowctl.run.supervise", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, start_new_session=True,
            )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        self._ctl = mine
        return mine

    def close(self) -> None:
        """Stop the server (running supervisors go on: each is tied to its own socket)."""
        if self._ctl is not None:
            self._ctl.close()
            self._ctl = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


def serve(ctl: socket.socket) -> None:
    """The server's loop: one forked supervisor per request, until the control socket closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the supervisors
    if sys.platform.startswith("linux"):
        import ctypes  # noqa: F401  (imported once here, not in every forked supervisor: ~5 ms)
    while True:
        try:
            body, fds, _, _ = socket.recv_fds(ctl, 1 << 20, 1)
        except InterruptedError:
            continue
        except OSError:
            return
        if not body:
            for fd in fds:
                os.close(fd)
            return
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            continue
        os.set_inheritable(fds[0], False)  # (SCM_RIGHTS does not set it) the step must not hold it
        if os.fork() == 0:
            code = 70
            try:
                ctl.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                code = supervise(socket.socket(fileno=fds[0]), json.loads(body))
            except BaseException:
                traceback.print_exc()  # into the worker's log: a supervisor must not crash silently
            finally:
                os._exit(code)
        os.close(fds[0])


# -- one attempt -----------------------------------------------------------------------------


def supervise(conn: socket.socket, req: Request) -> int:
    """Run one attempt to its end and report it on ``conn``; the exit status of the supervisor."""
    attempt = _Attempt(conn, req)
    try:
        result = attempt.run()
    except OSError as exc:  # could not even start: say why
        result = Result(outcome="error", exit_code=None, started_at=time.time(), duration=0.0,
                        error=f"on {socket.gethostname()}: {exc}")
    attempt.send(b"r" + json.dumps(result).encode())
    attempt.linger()
    return 0


class _Attempt:
    def __init__(self, conn: socket.socket, req: Request) -> None:
        self.conn = conn
        self.req = req
        self.masker = Masker(req["secrets"]) if req["secrets"] else None
        self.worker_gone = False
        self.pid = 0
        self.reaped = False
        self.outcome = ""  # set once we stop it: timeout, cancelled
        self.why: str | None = None
        self.kill_at: float | None = None
        self.sent = 0
        conn.settimeout(30.0)  # a worker that stops reading for this long is as good as gone

    def send(self, message: bytes) -> None:
        if self.worker_gone:
            return
        try:
            self.conn.send(message)
        except OSError:  # the worker went away, or stopped reading: nobody is left to tell
            self.worker_gone = True

    def linger(self) -> None:
        """After the result: read until the worker closes its end. Closing a socket with unread
        messages (a lease renewal that came in as the attempt ended) resets it, and the worker
        would lose the result it had not read yet."""
        if self.worker_gone:
            return
        self.conn.settimeout(10.0)
        try:
            while self.conn.recv(16):
                pass
        except OSError:
            pass

    def run(self) -> Result:
        req = self.req
        started_at, t0 = time.time(), time.monotonic()
        host = socket.gethostname()
        if not os.path.isdir(req["cwd"]):
            return Result(
                outcome="error", exit_code=None, started_at=started_at, duration=0.0,
                error=f"worker {host} cannot see the step's working folder {req['cwd']} (flowctl assumes the "
                "pipeline's folders are on a filesystem every worker shares)",
            )
        env = dict(os.environ)
        env.pop(CHAOS_ENV, None)  # a LocalCluster's workers inherit the client's: never a step's
        env.update(req["env"])
        program = procs.find_program(req["argv"][0], env.get("PATH", os.defpath), req["cwd"])
        if program is None:
            return Result(outcome="error", exit_code=None, started_at=started_at, duration=0.0,
                          error=f"command not found on {host}: {req['argv'][0]}")
        _become_subreaper()
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        os.chdir(req["cwd"])  # this process exists for this attempt: moving it moves nothing else
        stdout = write_end
        try:
            if req.get("stdout"):  # the shared filesystem holds it: the command writes it itself
                os.makedirs(os.path.dirname(req["stdout"]), exist_ok=True)
                stdout = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            self.pid = os.posix_spawn(
                program, req["argv"], env,
                file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, stdout, 1),
                              (os.POSIX_SPAWN_DUP2, write_end, 2)],
                setsid=True, setsigdef=_SIGNALS_TO_RESET, setsigmask=(),
            )
        finally:
            os.close(write_end)
            os.close(devnull)
            if stdout != write_end:
                os.close(stdout)
        code = self._watch(read_end, t0)
        os.close(read_end)
        outcome = self.outcome or ("ok" if code == 0 else "failed")
        return Result(outcome=outcome, exit_code=code, started_at=started_at, duration=time.monotonic() - t0,
                      error=self.why, output_bytes=self.sent)

    def _watch(self, out: int, t0: float) -> int:
        """Relay output and obey timers and messages until the command and everything it left
        behind are gone; the command's exit code (128+N when killed by signal N)."""
        req = self.req
        poller = select.poll()
        poller.register(out, select.POLLIN)
        poller.register(self.conn.fileno(), select.POLLIN)
        pidfd = procs.pidfd(self.pid)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        timeout_at = t0 + req["timeout"] if req["timeout"] is not None else None
        lease_at = time.monotonic() + req["lease"]
        code: int | None = None
        output_open = True
        while True:
            now = time.monotonic()
            if code is None and self.outcome == "":
                if timeout_at is not None and now >= timeout_at:
                    self._stop("timeout", None)
                elif now >= lease_at:
                    self._stop("cancelled", f"its client stopped renewing the lease for {req['lease']:g}s (gone?)")
            if self.kill_at is not None and now >= self.kill_at:
                self._kill_all(signal.SIGKILL)
            if code is None:
                code = procs.reap(self.pid)
                self.reaped = code is not None
                if code is not None and pidfd is not None:
                    poller.unregister(pidfd)
                    os.close(pidfd)
                    pidfd = None
                if code is not None:  # what the command left behind goes too (at once if killing)
                    self._kill_all(signal.SIGTERM if self.kill_at is None else signal.SIGKILL)
                    if self.kill_at is None:
                        self.kill_at = now + req["grace"]
            if code is not None and not output_open and not _children():
                return code
            deadlines = [d for d in (timeout_at, lease_at, self.kill_at) if d is not None]
            wait = max(0.0, min(deadlines) - now) if deadlines else 1.0
            if code is not None or pidfd is None:
                wait = min(wait, 0.05)  # reaping leftovers (or no pidfd): look again soon
            for fd, _ in poller.poll(min(wait, 5.0) * 1000):
                if fd == out:
                    data = _read(out)
                    if not data:
                        poller.unregister(out)
                        output_open = False
                        self._flush_masker()
                    else:
                        self._output(data)
                elif fd == self.conn.fileno():
                    lease_at = self._message(poller, lease_at)

    def _message(self, poller: select.poll, lease_at: float) -> float:
        try:
            msg = self.conn.recv(16)
        except OSError:
            msg = b""
        if not msg:  # the worker is gone (or killed): so is anyone to report to
            poller.unregister(self.conn.fileno())
            self.worker_gone = True
            self._stop("worker-lost", "the worker went away")
            return lease_at
        kind = msg[:1]
        if kind == b"l":
            return time.monotonic() + self.req["lease"]
        if kind == b"c":
            self._stop("cancelled", None)
        elif kind == b"k":
            self._stop("cancelled", None)
            self._kill_all(signal.SIGKILL)
            self.kill_at = time.monotonic()
        return lease_at

    def _stop(self, outcome: str, why: str | None) -> None:
        if not self.outcome:
            self.outcome, self.why = outcome, why
        if self.kill_at is None:
            self.kill_at = time.monotonic() + self.req["grace"]
            self._kill_all(signal.SIGTERM)

    def _kill_all(self, sig: int) -> None:
        """``sig`` to the command's session and to every process reparented to us."""
        if self.pid and not self.reaped:
            # Once the command is reaped its pid may name someone else's new session (pid_max
            # is 32768 here): what is left of its own is reparented to us, and found below.
            procs.signal_group(self.pid, sig)
        for child in _children():
            if child == self.pid:
                continue  # its exit code is ours to collect (``_watch``)
            procs.signal_group(child, sig)
            try:
                os.kill(child, sig)
            except OSError:
                pass
            procs.reap(child)  # collect it if it died, so _children() forgets it

    def _output(self, data: bytes) -> None:
        if self.masker is not None:
            data = self.masker.feed(data)
        self._send_output(data)

    def _flush_masker(self) -> None:
        if self.masker is not None:
            self._send_output(self.masker.finish())

    def _send_output(self, data: bytes) -> None:
        if data:
            self.sent += len(data)
            self.send(b"o" + data)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, CHUNK)
    except OSError:
        return b""


def _children() -> list[int]:
    try:
        with open(_CHILDREN.format(pid=os.getpid()), "rb") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def _become_subreaper() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        sys.stderr.write("usage: python -m flowctl.run.supervise CONTROL_FD (started by a flowctl Dask worker)\n")
        return 2
    serve(socket.socket(fileno=int(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["CHUNK", "Request", "Result", "Supervisors", "main", "serve", "supervise"]
