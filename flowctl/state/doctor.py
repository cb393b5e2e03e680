"""``flowctl doctor``: check the state folder, repair it, or move a bad database aside.

Checks: the database file is SQLite, passes ``PRAGMA integrity_check``, has a schema version
this flowctl knows; runs recorded as running whose lock nobody holds (the runner died); lock
files and their holders. ``repair`` salvages every readable row of a damaged database into a
fresh one and keeps the damaged file beside it (``state.db.bad-<time>``), and records dead
"running" runs as interrupted, and makes a new fingerprint key when the one recorded
fingerprints were made with is missing or damaged. ``move_aside`` just renames the database so the next run starts
afresh (the way out for a database from a newer flowctl). Nothing is ever deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from flowctl.errors import LockedError, StateError, StorageError
from flowctl.state import db, lock
from flowctl.state.files import unwritable

_HEADER = b"SQLite format 3\x00"
_REPAIR_HINT = "flowctl doctor --repair keeps it aside and starts a new database"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    level: str  # "ok", "warning" or "error"
    message: str
    hint: str = ""


@dataclass(frozen=True, slots=True)
class DoctorReport:
    state_dir: str
    findings: tuple[Finding, ...]
    actions: tuple[str, ...] = ()  # what repair / move-aside did

    @property
    def healthy(self) -> bool:
        return all(f.level != "error" for f in self.findings)


def _raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=db.BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {db.BUSY_TIMEOUT_MS}")
    return conn


def _database_findings(path: Path) -> list[Finding]:
    try:
        with open(path, "rb") as fh:
            header = fh.read(len(_HEADER))
    except OSError as exc:
        return [Finding("database", "error", f"cannot read {path}: {exc.strerror}", "check its permissions")]
    if not header:  # flowctl makes a database whole before it is at this path (issue 12)
        return [Finding("database", "error", f"{path} is empty (0 bytes): not a flowctl database", _REPAIR_HINT)]
    if header != _HEADER:
        return [Finding("database", "error", f"{path} is not a SQLite database", "flowctl doctor --repair")]
    try:
        with contextlib.closing(db.read_only(path)) as conn:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
            version = db.schema_version(conn)
    except (sqlite3.Error, StateError) as exc:
        return [Finding("database", "error", f"{path} is unreadable: {exc}", "flowctl doctor --repair")]
    found: list[Finding] = []
    if rows != ["ok"]:
        shown = "; ".join(rows[:3]) + (f" (+{len(rows) - 3} more)" if len(rows) > 3 else "")
        found.append(Finding("integrity", "error", f"{path} is damaged: {shown}", "flowctl doctor --repair"))
    else:
        found.append(Finding("integrity", "ok", f"{path} passes the integrity check"))
    if version == 0:
        found.append(Finding("database", "error", f"{path} has no flowctl schema: not a flowctl database", _REPAIR_HINT))
    elif version > db.SCHEMA_VERSION:
        found.append(
            Finding(
                "schema",
                "error",
                f"schema {version} was written by a newer flowctl (this one knows {db.SCHEMA_VERSION})",
                "upgrade flowctl, or `flowctl doctor --move-aside` to start afresh",
            )
        )
    else:
        found.append(Finding("schema", "ok", f"schema version {version} (current {db.SCHEMA_VERSION})"))
    return found


def _dead_runs(state_dir: Path) -> list[tuple[str, str]]:
    with contextlib.closing(db.read_only(db.db_path(state_dir))) as conn:
        rows = conn.execute("SELECT run_id, pipeline FROM runs WHERE status = 'running'").fetchall()
    return [(r, p) for r, p in rows if not lock.is_locked(state_dir, p)]


def _lost(folder: Path) -> list[Finding]:
    """Run folders the database does not record: their records were lost (issue 12)."""
    from flowctl.state.views import set_aside_databases, unrecorded_runs

    lost = unrecorded_runs(folder)
    if not lost:
        return []
    shown = ", ".join(lost[-3:]) + (f" and {len(lost) - 3} more" if len(lost) > 3 else "")
    aside = set_aside_databases(folder)
    if aside:  # set aside on request (--move-aside, --repair): their records may be there
        return [Finding("runs", "warning", f"{len(lost)} run folder(s) in {folder / 'runs'} have no record in the "
                        f"database ({shown}); a database set aside may hold them: {aside[-1].name}")]
    return [Finding(
        "runs", "error",
        f"{len(lost)} run folder(s) in {folder / 'runs'} have no record in the database ({shown}): "
        "their records were lost (the database was deleted or replaced)",
        "the records cannot be rebuilt; their step logs stay in those folders (remove them once read)",
    )]


def check(state_dir: str | os.PathLike[str]) -> DoctorReport:
    """Look at ``state_dir`` without changing anything (whether it can be written is tried with a
    probe file, made and removed at once)."""
    folder = Path(state_dir)
    path = db.db_path(folder)
    if not path.exists():
        return DoctorReport(str(folder), (Finding("database", "ok", f"no database yet at {path}"), *_lost(folder)))
    findings = _database_findings(path)
    if all(f.level == "ok" for f in findings):
        findings.extend(_lost(folder))
    if all(f.level == "ok" for f in findings):
        from flowctl.state.keys import key_problem

        problem = key_problem(folder)
        if problem:
            findings.append(Finding("key", "error", problem, "restore it, or `flowctl doctor --repair` makes a new one"))
        dead = _dead_runs(folder)
        for run_id, pipeline in dead:
            findings.append(
                Finding("runs", "warning", f"run {run_id} of {pipeline} is recorded as running but its runner is gone",
                        "`flowctl doctor --repair` or the next run records it as interrupted")
            )
    problem = unwritable(folder, path)
    if problem is not None:
        findings.append(
            Finding("writable", "warning", f"the state folder cannot be written here ({problem})",
                    "history commands work; `flowctl run` and `doctor --repair` stop with exit 74")
        )
    for lock_file in sorted(folder.glob("*.lock")):
        holder = lock.read_holder(lock_file)
        pipeline = lock_file.stem
        if lock.is_locked(folder, pipeline):
            findings.append(Finding("lock", "ok", f"{lock_file.name} is held by {holder.describe()}"))
    return DoctorReport(str(folder), tuple(findings))


def _aside(path: Path, tag: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.{tag}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{tag}-{stamp}-{n}")
    for suffix in ("-wal", "-shm"):
        side = Path(str(path) + suffix)
        if side.exists():
            os.replace(side, str(target) + suffix)
    os.replace(path, target)
    return target


def move_aside(state_dir: str | os.PathLike[str]) -> DoctorReport:
    """Rename the database (and its WAL files) so the next run starts with an empty one.
    Raises ``StorageError`` (exit 74) when the folder cannot be written."""
    folder = Path(state_dir)
    path = db.db_path(folder)
    if not path.exists():
        return DoctorReport(str(folder), (Finding("database", "ok", f"no database at {path}"),))
    _need_writable(folder, "--move-aside")
    target = _aside(path, "aside")
    return DoctorReport(str(folder), check(folder).findings, (f"moved {path} to {target}",))


def _readable_copy(bad: Path, work: Path) -> Path:
    """Copy the damaged file (and its WAL, which may hold the latest commits) into ``work``,
    leaving out the shared-memory index (it would describe the original) and correcting a page
    count in the header that promises more pages than a truncated file holds."""
    copy = work / "damaged.db"
    shutil.copyfile(bad, copy)
    wal = Path(str(bad) + "-wal")
    if wal.exists() and wal.stat().st_size:
        shutil.copyfile(wal, str(copy) + "-wal")
    with open(copy, "r+b") as fh:
        header = fh.read(100)
        if len(header) == 100 and header.startswith(_HEADER):
            page_size = int.from_bytes(header[16:18], "big")
            page_size = 65536 if page_size == 1 else page_size
            pages = copy.stat().st_size // page_size if page_size else 0
            if page_size and int.from_bytes(header[28:32], "big") > pages:
                fh.seek(28)
                fh.write(pages.to_bytes(4, "big"))
    return copy


_KEYS = {"runs": ("run_id",), "steps": ("run_id", "step"), "attempts": ("run_id", "step", "attempt"),
         "fingerprints": ("digest",)}


def _copy_rows(source: sqlite3.Connection, target: sqlite3.Connection, table: str, columns: list[str]) -> int:
    """Copy rows in key order, reading the tables themselves (NOT INDEXED: an index may be what
    is damaged); after a damaged page, go on from the next key that can be read."""
    keys = _KEYS[table]
    names = ", ".join(columns)
    order = ", ".join(keys)
    insert = f"INSERT OR IGNORE INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
    key_at = [columns.index(k) for k in keys]
    count, last = 0, None
    for _ in range(1000):  # each round skips at least one damaged region
        where, args = "", ()
        if last is not None:
            where = f"WHERE ({order}) > ({', '.join('?' * len(keys))})"
            args = last
        progressed = False
        try:
            for row in source.execute(f"SELECT {names} FROM {table} NOT INDEXED {where} ORDER BY {order}", args):
                progressed = True
                last = tuple(row[i] for i in key_at)
                with contextlib.suppress(sqlite3.Error):
                    target.execute(insert, row)
                    count += 1
            break
        except sqlite3.Error:
            if not progressed:
                break
    return count


def _salvage(bad: Path, fresh: Path) -> dict[str, int]:
    """Copy every row that can still be read from ``bad`` into a new database at ``fresh``."""
    copied: dict[str, int] = {}
    target = db.connect(fresh.parent)  # fresh is <work dir>/state.db with the current schema
    try:
        try:
            source = _raw(_readable_copy(bad, fresh.parent))
        except (sqlite3.Error, OSError):
            return copied
        with contextlib.closing(source):
            for table in _KEYS:
                wanted = [r[1] for r in target.execute(f"PRAGMA table_info({table})")]
                try:
                    have = {r[1] for r in source.execute(f"PRAGMA table_info({table})")}
                except sqlite3.Error:
                    have = set(wanted)  # the schema page is damaged: try the columns we know
                columns = [c for c in wanted if c in have]
                if not set(_KEYS[table]) <= set(columns):
                    continue  # no such table (an empty or foreign file): nothing to salvage
                with db.transaction(target):
                    copied[table] = _copy_rows(source, target, table, columns)
    finally:
        target.close()
    return {t: n for t, n in copied.items() if n}


def repair(state_dir: str | os.PathLike[str]) -> DoctorReport:
    """Fix what ``check`` found: salvage a damaged database, record dead runs as interrupted.

    Raises ``StateError`` for a database from a newer flowctl (use ``move_aside``),
    ``StorageError`` (exit 74) when the folder cannot be written."""
    folder = Path(state_dir)
    path = db.db_path(folder)
    if not path.exists():
        return check(folder)
    _need_writable(folder, "--repair")
    findings = _database_findings(path)
    actions: list[str] = []
    if any(f.check == "schema" and f.level == "error" for f in findings):
        raise StateError(
            f"{path} is from a newer flowctl; repairing it with this one would lose what it recorded",
            hint="upgrade flowctl, or `flowctl doctor --move-aside` to start afresh", usage=True,
        )
    if any(f.level == "error" for f in findings):
        work = folder / f".salvage-{os.getpid()}"
        work.mkdir(exist_ok=True)
        fresh = db.db_path(work)
        try:
            copied = _salvage(path, fresh)
            target = _aside(path, "bad")
            os.replace(fresh, path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        rows = ", ".join(f"{n} {t}" for t, n in copied.items()) or "nothing readable"
        actions.append(f"moved the damaged database to {target}; salvaged {rows} into a new {path}")
    from flowctl.state.keys import key_problem, replace_key
    from flowctl.state.store import SqliteRunStore

    if key_problem(folder):  # on purpose only: a run never makes a new key over recorded fingerprints
        actions.append(replace_key(folder))
    dead = _dead_runs(folder)
    if dead:
        store = SqliteRunStore(folder)
        try:
            for pipeline in sorted({p for _, p in dead}):
                with contextlib.suppress(LockedError), lock.held(folder, pipeline):
                    for run_id in store.mark_interrupted(pipeline):
                        actions.append(f"recorded run {run_id} of {pipeline} as interrupted")
        finally:
            store.close()
    return DoctorReport(str(folder), check(folder).findings, tuple(actions))


def _need_writable(folder: Path, option: str) -> None:
    problem = unwritable(folder, db.db_path(folder))
    if problem is not None:
        raise StorageError(
            f"doctor {option} cannot change the state folder {folder}: it cannot be written here ({problem})",
            hint=f"run it as a user who can write {folder}, or copy the folder to a writable place and "
            f"run `flowctl doctor {option} --state-dir COPY` there",
        )


__all__ = ["DoctorReport", "Finding", "check", "move_aside", "repair"]
