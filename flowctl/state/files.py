"""Which file a run holds: the identity (device, inode) of the state database and lock file.

A run opens ``state.db`` and its pipeline's lock file once, then keeps writing through the
descriptors it has. If something deletes or replaces either file meanwhile (a clean-up job, an
``rm -rf .flowctl``, a restore from backup), the run would go on writing into a file nobody will
ever read, and a second run of the pipeline could lock the new file and start beside it (issue
12). ``FileIdentity`` remembers what a path named when the run opened it; ``check`` compares the
path with that at each checkpoint and raises ``StorageError`` (exit 74) when it changed.
A ``stat`` costs about a microsecond; the store does it once per commit.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from flowctl.errors import StorageError


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """The (device, inode) that ``path`` named when it was opened; ``what`` names it in errors."""

    path: str
    device: int
    inode: int
    what: str = "file"

    @classmethod
    def of_fd(cls, path: str | os.PathLike[str], fd: int, what: str = "file") -> FileIdentity:
        """The identity of the open descriptor ``fd`` (the file actually held)."""
        st = os.fstat(fd)
        return cls(os.fspath(path), st.st_dev, st.st_ino, what)

    @classmethod
    def of_path(cls, path: str | os.PathLike[str], what: str = "file") -> FileIdentity:
        """The identity of what ``path`` names now. Raises ``OSError`` when it does not exist."""
        st = os.stat(path)
        return cls(os.fspath(path), st.st_dev, st.st_ino, what)

    def changed(self) -> str | None:
        """None while ``path`` still names this file; else what happened to it."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return "deleted"
        except OSError as exc:
            return f"no longer reachable ({exc.strerror})"
        if st.st_ino != self.inode or st.st_dev != self.device:
            return "replaced by another file"
        return None

    def check(self, doing: str) -> None:
        """Raise ``StorageError`` when ``path`` no longer names this file; ``doing`` says what
        was held (e.g. ``run 2026…-3fa1``) for the message."""
        change = self.changed()
        if change is None:
            return
        why = ("it no longer keeps a second run of the pipeline out" if self.what == "lock file"  # trial 17
               else "nothing more can be recorded where anyone will find it")
        raise StorageError(
            f"the {self.what} {self.path} was {change} while {doing} was using it: stopping ({why})",
            hint="find what removed or replaced it (a clean-up job, `rm -rf` of the state folder, a "
            "restore), keep it away from the state folder while a run is going on, then run the "
            "pipeline again",
        )


def unwritable(folder: str | os.PathLike[str], *files: str | os.PathLike[str]) -> str | None:
    """Why ``folder`` (or one of ``files`` in it) cannot be written by this process, or None.

    Tried for real, not with ``os.access``: root passes every permission check, yet a read-only
    mount or an immutable file still refuses a write.
    """
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".flowctl-probe-")
    except OSError as exc:
        return f"{folder}: {exc.strerror}"
    os.close(fd)
    os.unlink(probe)
    for path in files:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CLOEXEC))
        except FileNotFoundError:
            continue
        except OSError as exc:
            return f"{path}: {exc.strerror}"
    return None


__all__ = ["FileIdentity", "unwritable"]
