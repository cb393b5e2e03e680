"""Test-only failpoints: make the state store die or fail at an exact commit.

Crash-safety promises ("a resume never repeats finished work", "state loss is never silent") are
tested by stopping a real ``flowctl run`` right after *each* of its state commits in turn, not at
random moments. ``FLOWCTL_FAILPOINTS`` names where and how, read once when a store opens::

    FLOWCTL_FAILPOINTS="state.after-commit=kill@3"        # SIGKILL ourselves after the 3rd commit
    FLOWCTL_FAILPOINTS="state.before-commit=enospc@2"     # the 2nd commit fails: disk full

The grammar is that of FreeBSD's fail(9) and fail-rs, reduced to what the tests need:
``NAME=ACTION[@N]`` items separated by commas; ``N`` (default 1) is the 1-based count of hits of
``NAME`` at which the action fires, once. Actions:

* ``kill``: ``SIGKILL`` this process (what ``kill -9`` does: no handler, no clean-up);
* ``enospc`` / ``eio``: raise the ``sqlite3.OperationalError`` SQLite raises when the disk is full
  or failing, so the store's real error path runs.

Points the store hits: ``state.before-commit`` (inside the transaction, before ``COMMIT``: an
error rolls it back) and ``state.after-commit`` (the transaction is durable); ``db.connect`` hits
``state.before-link`` when a new database is built under its temporary name, before it is
linked into place. The chaos issue's
``kill-runner`` reuses ``kill``. A ``Failpoints`` is owned by the object that hits it (no
process-wide state); with the variable unset it does nothing and costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from flowctl.errors import UsageError

ENV_VAR = "FLOWCTL_FAILPOINTS"
ACTIONS = ("kill", "enospc", "eio")
POINTS = ("state.before-commit", "state.after-commit", "state.before-link")


@dataclass(frozen=True, slots=True)
class Failpoint:
    """Fire ``action`` at the ``at``-th hit of ``name``."""

    name: str
    action: str
    at: int = 1


def parse(text: str) -> tuple[Failpoint, ...]:
    """Parse the ``FLOWCTL_FAILPOINTS`` grammar. Raises ``ValueError`` naming the bad item."""
    points: list[Failpoint] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, rest = item.partition("=")
        if not sep or name not in POINTS:
            raise ValueError(f"{ENV_VAR}: {item!r}: expected one of {', '.join(POINTS)} = ACTION[@N]")
        action, _, count = rest.partition("@")
        if action not in ACTIONS:
            raise ValueError(f"{ENV_VAR}: {item!r}: action must be one of {', '.join(ACTIONS)}")
        try:
            at = int(count) if count else 1
        except ValueError:
            at = 0
        if at < 1:
            raise ValueError(f"{ENV_VAR}: {item!r}: @N takes a whole number from 1")
        points.append(Failpoint(name, action, at))
    return tuple(points)


class Failpoints:
    """The failpoints one store hits, with their hit counts."""

    __slots__ = ("_by_name", "_hits")

    def __init__(self, points: tuple[Failpoint, ...] = ()) -> None:
        self._by_name: dict[str, list[Failpoint]] = {}
        for fp in points:
            self._by_name.setdefault(fp.name, []).append(fp)
        self._hits: dict[str, int] = {}

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Failpoints:
        """The failpoints ``environ`` asks for (none when ``FLOWCTL_FAILPOINTS`` is unset).
        Raises ``UsageError`` for a value that does not parse."""
        text = environ.get(ENV_VAR, "")
        if not text:
            return cls()
        try:
            return cls(parse(text))
        except ValueError as exc:
            raise UsageError(str(exc), hint=f"unset {ENV_VAR}: it is for flowctl's own crash tests") from exc

    def hit(self, name: str) -> None:
        """Count a hit of ``name`` and fire what is due. Raises ``sqlite3.OperationalError``."""
        armed = self._by_name.get(name)
        if not armed:
            return
        n = self._hits.get(name, 0) + 1
        self._hits[name] = n
        for fp in armed:
            if fp.at == n:
                _fire(fp.action)


def kill_self() -> None:
    """The ``kill`` action: ``SIGKILL`` this process, as ``kill -9`` does (no handler, no
    clean-up). Chaos's ``kill-runner`` fires it too (issue 17). Never returns."""
    os.kill(os.getpid(), signal.SIGKILL)
    signal.pause()  # SIGKILL is delivered before this returns


def _fire(action: str) -> None:
    if action == "kill":
        kill_self()
    elif action == "enospc":
        raise _sqlite_error("database or disk is full", sqlite3.SQLITE_FULL)
    elif action == "eio":
        raise _sqlite_error("disk I/O error", sqlite3.SQLITE_IOERR)


def _sqlite_error(text: str, code: int) -> sqlite3.OperationalError:
    """The error SQLite itself raises, result code included (``db.state_error`` maps by it)."""
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorcode = code
    return exc


__all__ = ["ACTIONS", "ENV_VAR", "POINTS", "Failpoint", "Failpoints", "kill_self", "parse"]
