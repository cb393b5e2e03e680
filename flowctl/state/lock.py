"""The overlap lock: one ``flowctl run`` of a pipeline per state folder at a time.

``fcntl.flock`` on ``<state dir>/<pipeline>.lock``. The kernel drops the lock when the holder's
last file descriptor closes, which includes ``kill -9`` and crashes, so a lock never outlives its
process; the descriptor is opened close-on-exec, so step processes never inherit it. Who holds
the lock is decided only by the kernel: the run id, pid, host and start time written inside are
for the message, never a test of liveness, so pid reuse cannot fool it.

A lock on a file that is no longer at the path excludes nobody (issue 12): after locking,
``acquire`` checks that the path still names the file it locked and starts again when it does
not (the holder before us may have been deleting or replacing it), and the holder checks the same
at each checkpoint (``PipelineLock.identity``, see ``files.py``), stopping with exit 74 when the
file was deleted or replaced under it. One file per pipeline: runs of different pipelines never
exclude each other.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from flowctl.errors import LockedError, StateError, StorageError
from flowctl.state.files import FileIdentity

_POLL = 0.05
_RELOCK_LIMIT = 100  # the path changed under us this many times in a row: give up


@dataclass(frozen=True, slots=True)
class Holder:
    """What the holder of a lock wrote about itself (may be empty for a moment after locking)."""

    run_id: str = ""
    pid: int | None = None
    host: str = ""
    since: float | None = None

    def describe(self) -> str:
        if not self.run_id and self.pid is None:
            return "another flowctl process"
        parts = [f"run {self.run_id}" if self.run_id else "a run"]
        if self.pid is not None:
            parts.append(f"pid {self.pid}" + (f" on {self.host}" if self.host else ""))
        if self.since:
            parts.append("since " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since)))
        return parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")


def lock_path(state_dir: str | os.PathLike[str], pipeline: str) -> Path:
    """``<state dir>/<pipeline>.lock``, with characters unsafe in a file name replaced."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", pipeline) or "_"
    return Path(state_dir) / f"{safe}.lock"


class PipelineLock:
    """An acquired lock; release it with ``release()`` or by leaving the ``with`` block."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd
        #: The file locked; a checkpoint finding the path changed stops the run (exit 74).
        self.identity = FileIdentity.of_fd(path, fd, "lock file")

    def update(self, run_id: str) -> None:
        """Write the holder's run id (known only once the run is created) into the lock file."""
        if self._fd is not None:
            _write_holder(self._fd, run_id)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> PipelineLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire(
    state_dir: str | os.PathLike[str],
    pipeline: str,
    *,
    run_id: str = "",
    wait: float | None = 0.0,
    on_wait: Callable[[Holder, Path], None] | None = None,
) -> PipelineLock:
    """Take the lock of ``pipeline`` in ``state_dir``.

    ``wait`` is how long to wait for a holder to finish: 0 fails at once, ``None`` waits forever;
    ``on_wait`` is told the holder once, when the waiting starts (issue 13: ``--wait`` was silent).
    Raises ``LockedError`` (exit 75) naming the holder's run id and pid when the lock stays held,
    ``StorageError`` (exit 74) when the lock file cannot be opened or made (a read-only or full
    state folder).
    """
    path = lock_path(state_dir, pipeline)
    deadline = None if wait is None else time.monotonic() + wait
    for _ in range(_RELOCK_LIMIT):
        fd = _open(path)
        try:
            _flock(fd, path, pipeline, wait, deadline, on_wait)
            on_wait = None  # told once, even when the lock file is replaced meanwhile
            if _still_at(path, fd):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # we locked a file that was deleted or replaced meanwhile: lock the new one
    else:
        raise StateError(f"cannot lock {path}: it keeps being deleted or replaced", hint="find what removes it")
    _write_holder(fd, run_id)
    return PipelineLock(path, fd)


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StorageError(
            f"cannot open lock file {path}: {exc.strerror}",
            hint=f"flowctl run needs to write in {path.parent}: check that it is writable and not full, "
            "or point --state-dir / FLOWCTL_STATE_DIR at a folder that is",
        ) from exc


def _flock(fd: int, path: Path, pipeline: str, wait: float | None, deadline: float | None,
           on_wait: Callable[[Holder, Path], None] | None) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise StateError(f"cannot lock {path}: {exc.strerror}") from exc
        if deadline is not None and time.monotonic() >= deadline:
            holder = read_holder(path)
            waited = f" after waiting {wait:g}s" if wait else ""
            # Not "or use another --state-dir": two state folders for one pipeline let two runs
            # write the same outputs at once (issue 13).
            raise LockedError(
                f"pipeline {pipeline} is already running{waited}: {holder.describe()} holds {path}",
                hint="wait for it with --wait [DURATION] (`flowctl run`, `flowctl dlq replay`)",
            )
        if on_wait is not None:
            on_wait(read_holder(path), path)
            on_wait = None
        time.sleep(_POLL if deadline is None else max(0.0, min(_POLL, deadline - time.monotonic())))


def _still_at(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    return FileIdentity.of_fd(path, fd).changed() is None


def _write_holder(fd: int, run_id: str) -> None:
    text = json.dumps({"run_id": run_id, "pid": os.getpid(), "host": os.uname().nodename, "since": time.time()})
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode() + b"\n", 0)
    except OSError:  # a full disk: the lock holds all the same; the message then says less
        pass


def read_holder(path: str | os.PathLike[str]) -> Holder:
    """What the lock file says about its holder (empty ``Holder`` when nothing readable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return Holder()
    if not isinstance(data, dict):
        return Holder()
    pid = data.get("pid")
    return Holder(
        run_id=str(data.get("run_id") or ""),
        pid=pid if isinstance(pid, int) else None,
        host=str(data.get("host") or ""),
        since=data.get("since") if isinstance(data.get("since"), (int, float)) else None,
    )


def is_locked(state_dir: str | os.PathLike[str], pipeline: str) -> bool:
    """Whether some process holds the lock of ``pipeline`` right now (asks the kernel)."""
    path = lock_path(state_dir, pipeline)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


@contextlib.contextmanager
def held(state_dir: str | os.PathLike[str], pipeline: str, *, run_id: str = "", wait: float | None = 0.0) -> Iterator[PipelineLock]:
    """``acquire`` as a context manager."""
    lock = acquire(state_dir, pipeline, run_id=run_id, wait=wait)
    try:
        yield lock
    finally:
        lock.release()


__all__ = ["Holder", "PipelineLock", "acquire", "held", "is_locked", "lock_path", "read_holder"]
