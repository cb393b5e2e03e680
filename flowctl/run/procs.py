"""The one module that spawns and signals processes (STYLE: "one subprocess helper module").

Owns: spawning a command in its own process group with its output on a file descriptor
(``os.posix_spawn``: no fork of the Python heap, cheaper than ``subprocess.Popen``). A new
process group, not a new session: creating and tearing down a session costs about 0.3 ms per
process on Linux (measured: a third of the per-step budget), and a group is what we signal; it
is not the terminal's foreground group either, so Ctrl-C reaches only the runner. Also:
signalling a process group, becoming a child subreaper on Linux so that grandchildren which
called ``setsid`` are reparented to us and can be swept, and listing our children with the token
each carries in its environment. Also finding, machine-wide, the processes a flowctl run started
(``tagged_processes``: their environment carries ``FLOWCTL_RUN_ID``; ``setsid`` and ``nohup``
keep it), which is how a run finds the steps an earlier runner left when it was killed.
It leaves policy (when to kill, grace periods) to the executor and ``sweep``.
"""

from __future__ import annotations

import os
import select
import selectors
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    import ctypes

#: Environment variable tagging every process of one attempt; sweeping matches on it. Its value
#: is ``RUNNER_PID.NONCE.N`` (``token_prefix`` + the attempt's number): the runner's pid tells a
#: run's processes from those of a run elsewhere that happens to have the same run id.
TOKEN_VAR = "FLOWCTL_PROC_TOKEN"
#: Environment variables every step process gets from the scheduler (and its children inherit).
RUN_ID_VAR = "FLOWCTL_RUN_ID"
STEP_VAR = "FLOWCTL_STEP"

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)  # Python ignores these; children must not
T = TypeVar("T")


def _libc() -> ctypes.CDLL:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def set_subreaper(on: bool) -> bool:
    """Make this process a child subreaper (Linux); return the previous setting (False elsewhere)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = _libc()
    previous = ctypes.c_int(0)
    libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0)
    return bool(previous.value)


def token_prefix() -> str:
    """What every ``TOKEN_VAR`` value of this runner's attempts starts with: its pid and a nonce."""
    return f"{os.getpid()}.{time.monotonic_ns():x}"


def find_program(name: str, path: str, cwd: str) -> str | None:
    """Where ``name`` is as a child in ``cwd`` with ``PATH=path`` would find it: searched on
    ``path`` when it has no ``/``, else relative to ``cwd`` (None: not found on ``path``)."""
    if "/" not in name:
        return shutil.which(name, path=path)
    return name if os.path.isabs(name) else os.path.join(cwd, name)


def spawn(program: str, argv: tuple[str, ...], env: Mapping[str, str], *, stdin_fd: int, out_fd: int,
          stdout_fd: int | None = None) -> int:
    """Start ``program`` (a path) with ``argv`` in its own process group (pgid = pid), in the
    runner's own folder; return its pid. stdout and stderr both go to ``out_fd`` (stdout to
    ``stdout_fd`` when given).

    Raises OSError (missing program). The folder an attempt runs in is ``Launcher``'s business:
    the runner never moves.
    """
    return os.posix_spawn(
        program,
        argv,
        env,
        file_actions=[
            (os.POSIX_SPAWN_DUP2, stdin_fd, 0),
            (os.POSIX_SPAWN_DUP2, out_fd if stdout_fd is None else stdout_fd, 1),
            (os.POSIX_SPAWN_DUP2, out_fd, 2),
        ],
        setpgroup=0,  # its own process group (see the module docstring: not a session)
        setsigdef=_DEFAULT_SIGNALS,
    )


class Poller(Generic[T]):
    """Wait for readable descriptors (pidfds, pipes) and get their owners back: epoll where
    there is one (one syscall per change, none of ``selectors``' per-call objects), else
    ``selectors``."""

    def __init__(self) -> None:
        self._owners: dict[int, T] = {}
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._fallback = None if self._epoll is not None else selectors.DefaultSelector()

    def register(self, fd: int, owner: T) -> None:
        self._owners[fd] = owner
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLIN)
        else:
            assert self._fallback is not None
            self._fallback.register(fd, selectors.EVENT_READ)

    def unregister(self, fd: int) -> None:
        if self._owners.pop(fd, 0) == 0:
            return
        if self._epoll is not None:
            self._epoll.unregister(fd)
        else:
            assert self._fallback is not None
            self._fallback.unregister(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, T]]:
        owners = self._owners
        if self._epoll is not None:
            ready = self._epoll.poll(-1 if timeout is None else timeout)
            return [(fd, owners[fd]) for fd, _ in ready if fd in owners]
        assert self._fallback is not None
        return [(k.fd, owners[k.fd]) for k, _ in self._fallback.select(timeout) if k.fd in owners]

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
        if self._fallback is not None:
            self._fallback.close()


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to process group ``pgid``; False when the group is empty (or not ours)."""
    if pgid <= 1 or pgid == os.getpgrp():
        return False
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def group_alive(pgid: int) -> bool:
    """Whether any process (zombies included) is left in group ``pgid``."""
    return signal_group(pgid, 0)


def signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_process_and_group(pid: int, sig: int) -> None:
    """Signal ``pid`` and the process group it leads or belongs to (a setsid'd orphan)."""
    try:
        pgid = os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return
    signal_group(pgid, sig)
    signal_pid(pid, sig)


def child_pids() -> list[int]:
    """Our direct children (reparented orphans included), from /proc; [] where unavailable."""
    try:
        with open(f"/proc/self/task/{os.getpid()}/children", "rb") as fh:
            data = fh.read()
    except OSError:
        return _child_pids_by_scan()
    return [int(p) for p in data.split()]


def _child_pids_by_scan() -> list[int]:
    me = str(os.getpid()).encode()
    found: list[int] = []
    for pid, stat in _each_process("stat"):
        fields = stat.rsplit(b")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == me:
            found.append(pid)
    return found


def _each_process(name: str, skip: set[int] | frozenset[int] = frozenset()) -> Iterator[tuple[int, bytes]]:
    """(pid, content of ``/proc/PID/NAME``) for every process we can read, except ``skip``."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit() or int(entry) in skip:
            continue
        try:
            with open(f"/proc/{entry}/{name}", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        yield int(entry), data


def process_token(pid: int) -> str | None:
    """The value of ``TOKEN_VAR`` in the environment ``pid`` started with (None: unreadable)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    prefix = TOKEN_VAR.encode() + b"="
    for item in data.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


@dataclass(frozen=True, slots=True)
class Tagged:
    """A live process whose environment says which flowctl run (and step, attempt) started it."""

    pid: int
    ppid: int
    pgid: int
    run_id: str
    step: str = ""
    token: str = ""

    @property
    def runner_pid(self) -> int | None:
        """The pid of the runner that started its attempt (from ``token``; None without one)."""
        head = self.token.split(".", 1)[0]
        return int(head) if head.isdigit() else None


def tagged_processes() -> list[Tagged]:
    """Every live process of this machine whose environment carries ``FLOWCTL_RUN_ID``, except
    this process and its ancestors (a run started from inside a step must not find itself).
    Reads ``/proc/*/environ`` (the environment a process started with); [] without ``/proc``.
    Processes of other users are invisible unless we are root; zombies are left out."""
    needle = RUN_ID_VAR.encode() + b"="
    found: list[Tagged] = []
    for pid, data in _each_process("environ", skip=_ancestors()):
        if needle not in data:
            continue
        stat = _stat_fields(pid)
        if stat is None or stat[0] in (b"Z", b"X"):
            continue
        env = dict(item.partition(b"=")[::2] for item in data.split(b"\0") if b"=" in item)
        found.append(
            Tagged(
                pid=pid, ppid=int(stat[1]), pgid=int(stat[2]),
                run_id=env.get(RUN_ID_VAR.encode(), b"").decode(errors="replace"),
                step=env.get(STEP_VAR.encode(), b"").decode(errors="replace"),
                token=env.get(TOKEN_VAR.encode(), b"").decode(errors="replace"),
            )
        )
    return found


def _stat_fields(pid: int) -> list[bytes] | None:
    """``/proc/PID/stat`` after the command name: state, ppid, pgrp, ... (None: gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[-1].split()
    except OSError:
        return None
    return fields if len(fields) > 2 else None


def _ancestors() -> set[int]:
    found = {os.getpid()}
    pid = os.getppid()
    while pid > 1 and pid not in found:
        found.add(pid)
        stat = _stat_fields(pid)
        if stat is None:
            break
        pid = int(stat[1])
    return found


def signal_exact(pid: int, fd: int | None, sig: int) -> None:
    """Signal the process a pidfd refers to (immune to pid reuse); by pid without a pidfd."""
    if fd is not None:
        try:
            signal.pidfd_send_signal(fd, sig)
        except OSError:
            pass
        return
    signal_pid(pid, sig)


def exited(fd: int | None, pid: int) -> bool:
    """Whether the process behind pidfd ``fd`` (or ``pid`` without one) has ended."""
    if fd is None:
        return not is_alive(pid)
    return bool(select.select([fd], [], [], 0)[0])


def reap(pid: int) -> int | None:
    """Collect ``pid`` if it has ended; return its exit code (128+N for signal N) or None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return -1
    if done == 0:
        return None
    return exit_code(status)


def exit_code(status: int) -> int:
    """A wait status as a shell would report it: the exit code, or 128+N when killed by N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def pidfd(pid: int) -> int | None:
    """A pollable descriptor that becomes readable when ``pid`` exits (None before Linux 5.3)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def is_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[-1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state not in (b"Z", b"X")


__all__ = [
    "RUN_ID_VAR",
    "STEP_VAR",
    "TOKEN_VAR",
    "Poller",
    "Tagged",
    "child_pids",
    "exit_code",
    "exited",
    "find_program",
    "group_alive",
    "is_alive",
    "kill_process_and_group",
    "pidfd",
    "process_token",
    "reap",
    "set_subreaper",
    "signal_exact",
    "signal_group",
    "signal_pid",
    "spawn",
    "tagged_processes",
    "token_prefix",
]
