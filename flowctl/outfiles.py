"""Files written at a path someone names: atomically (a temporary file, then a rename), except
where a rename would do harm.

A reader never sees half a file: ``flowctl init``'s starters, ``report -o``, ``bench
--export-json``. But a path may name a device or a pipe (``/dev/stdout``, a FIFO): that is
written through, never renamed over (trial 17: ``bench --export-json /dev/full`` run as root
replaced the device with a regular file for the whole machine). A leaf: every stage may use it.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def is_special(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is there and not a regular file (``/dev/null``, ``/dev/stdout``, a FIFO):
    a file to write through, never to rename over (trial 17: ``bench --export-json /dev/full``
    run as root replaced the device with a regular file)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def write_atomic(path: Path, text: str, *, exclusive: bool = True) -> bool:
    """Write ``text`` to ``path`` via a temp file and a rename; with ``exclusive`` never replace.
    Without it, a device or a pipe is written through, and a symbolic link's target is replaced.

    Returns False (writing nothing) when ``exclusive`` and the file exists. Raises ``OSError``.
    """
    if not exclusive:
        if is_special(path):
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            return True
        if path.is_symlink():
            path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if exclusive:
            try:
                os.link(tmp, path)  # fails if it exists: no window where a file could be replaced
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
            tmp = ""
        return True
    finally:
        if tmp:
            os.unlink(tmp)


__all__ = ["is_special", "write_atomic"]
