"""One attempt's output on the machine that runs ``flowctl run``: its log file and its lines.

Shared by the executors (local processes, Dask workers): the log file (and the step's log
folder) is made with the first byte, because creating a file costs more than spawning on some
disks and most steps of a big pipeline print nothing: an attempt that prints nothing leaves no
log file. A log that cannot be written (a full disk, a read-only folder) is a storage failure
(``failure``): the output keeps being drained, the attempt's result says why its log is
incomplete, and the executor's ``wait`` raises the ``StorageError`` (exit 74) so the run stops
instead of running on with output lost (issue 12). With ``--stream`` each complete line is also
reported (``on_line``). Output arrives here masked.
"""

from __future__ import annotations

import errno
import os

from flowctl.errors import StorageError
from flowctl.run.ports import AttemptKey, OutputCallback

_TAIL_BYTES = 8192
TAIL_LINES = 12
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


class AttemptLog:
    """Write an attempt's (masked) output: ``write`` chunks, ``close`` at the end."""

    __slots__ = ("error", "failure", "fd", "key", "logged", "on_line", "partial", "path")

    def __init__(self, path: str, key: AttemptKey, on_line: OutputCallback | None) -> None:
        self.path = path
        self.key = key
        self.on_line = on_line  # None unless the attempt streams
        self.fd = -1
        self.logged = False  # the log file exists (it printed something)
        self.error: str | None = None  # why the log could not be written
        self.failure: StorageError | None = None  # ... as the error that stops the run
        self.partial = b""

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.error is None:
            try:
                if self.fd < 0:
                    self._open()
                    self.logged = True
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view) :]
            except OSError as exc:  # full disk, lost permission: keep draining; wait() raises
                self.failure = log_failure(self.key.step, self.path, exc)
                self.error = f"could not write the log {self.path}: {exc.strerror or exc}"
        if self.on_line is not None:
            lines = (self.partial + data).split(b"\n")
            self.partial = lines.pop()
            for line in lines:
                self.on_line(self.key, line.decode(errors="replace").rstrip("\r"))

    def create(self) -> None:
        """Make the file now, empty (a storage failure is kept as ``write`` keeps it)."""
        try:
            self._open()
            self.logged = True
        except OSError as exc:
            self.failure = log_failure(self.key.step, self.path, exc)
            self.error = f"could not write {self.path}: {exc.strerror or exc}"

    def _open(self) -> None:
        try:
            self.fd = os.open(self.path, _FLAGS, 0o644)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self.fd = os.open(self.path, _FLAGS, 0o644)

    def close(self) -> None:
        """Report a last unfinished line and close the file."""
        if self.partial and self.on_line is not None:
            self.on_line(self.key, self.partial.decode(errors="replace"))
        self.partial = b""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def tail(self, lines: int = TAIL_LINES) -> tuple[str, ...]:
        return read_tail(self.path, lines) if self.logged else ()


def write_note(key: AttemptKey, log_path: str, text: str) -> StorageError | None:
    """Append a line of flowctl's own (``could not start: …``) to a log; the storage failure
    when it cannot be written."""
    try:
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(f"flowctl: {text}\n")
    except OSError as exc:
        return log_failure(key.step, log_path, exc)
    return None


def log_failure(step: str, log_path: str, exc: OSError) -> StorageError:
    """The error (exit 74) for a log of ``step`` that could not be written, with the way out."""
    why = f"could not write the log {log_path}: {exc.strerror or exc}"
    folder = os.path.dirname(log_path)
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return StorageError(
        f"step {step}: {why}" + (f" (no space left on the disk that holds {folder})" if full else ""),
        hint=(f"free space on the disk that holds {folder}" if full else f"make {folder} writable")
        + " (or point --state-dir at another disk), then `flowctl run PIPELINE --resume`",
    )


def read_tail(path: str, lines: int = TAIL_LINES) -> tuple[str, ...]:
    """The last ``lines`` lines of a log file (empty if unreadable)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - _TAIL_BYTES))
            data = fh.read()
    except OSError:
        return ()
    text = data.decode(errors="replace").splitlines()
    return tuple(text[-lines:])


__all__ = ["TAIL_LINES", "AttemptLog", "log_failure", "read_tail", "write_note"]
