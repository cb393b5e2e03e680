"""Opening the state database: pragmas, the versioned schema, forward migrations, error mapping.

Owns the one ``connect()`` of flowctl and every way opening can go wrong. The database lives at
``<state dir>/state.db`` (``.flowctl/`` beside the pipeline file unless ``--state-dir`` /
``FLOWCTL_STATE_DIR`` say otherwise). Durability: WAL journal with ``synchronous=NORMAL``: a
committed transaction survives the death of the process (``kill -9``), which is what resume needs;
only a power loss can drop the last few commits. Schema changes are additive migrations applied
in one ``BEGIN IMMEDIATE`` transaction, so a half-created or half-migrated schema never exists.

A database that is not SQLite, is corrupt, unreadable, or was written by a newer flowctl raises
``StateError`` with a hint (``flowctl doctor``); it is never silently replaced by an empty one.
The tables themselves are written by ``store.py`` and read by ``history.py``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from flowctl.errors import StateError

DB_NAME = "state.db"
BUSY_TIMEOUT_MS = 10_000

#: Forward migrations: ``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``.
#: Only ever append; only add tables, columns and indexes, so older rows stay readable.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            pipeline TEXT NOT NULL,
            pipeline_path TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            duration REAL,
            steps TEXT NOT NULL DEFAULT '[]',
            params TEXT NOT NULL DEFAULT '{}',
            selection TEXT NOT NULL DEFAULT '{}',
            concurrency INTEGER,
            resumed_from TEXT,
            provenance TEXT NOT NULL DEFAULT '{}',
            counts TEXT NOT NULL DEFAULT '{}',
            root_failure TEXT,
            host TEXT NOT NULL DEFAULT '',
            pid INTEGER,
            fire_time REAL
        )""",
        "CREATE INDEX runs_by_pipeline ON runs (pipeline, started_at)",
        "CREATE INDEX runs_by_start ON runs (started_at)",
        """CREATE TABLE steps (
            run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            step TEXT NOT NULL,
            position INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL,
            ready_at REAL,
            queue_depth INTEGER,
            started_at REAL,
            finished_at REAL,
            attempts INTEGER NOT NULL DEFAULT 0,
            duration REAL,
            exit_code INTEGER,
            reason TEXT NOT NULL DEFAULT '',
            fingerprint TEXT NOT NULL DEFAULT '',
            outputs TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (run_id, step)
        ) WITHOUT ROWID""",
        """CREATE TABLE attempts (
            run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            step TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            kind TEXT NOT NULL DEFAULT 'attempt',
            max_attempts INTEGER NOT NULL DEFAULT 1,
            started_at REAL,
            finished_at REAL,
            outcome TEXT,
            exit_code INTEGER,
            duration REAL,
            host TEXT NOT NULL DEFAULT '',
            fingerprint TEXT NOT NULL DEFAULT '',
            command TEXT NOT NULL DEFAULT '',
            log_path TEXT NOT NULL DEFAULT '',
            error TEXT,
            retry_delay REAL,
            PRIMARY KEY (run_id, step, attempt)
        ) WITHOUT ROWID""",
        """CREATE TABLE fingerprints (
            digest TEXT PRIMARY KEY,
            parts TEXT NOT NULL
        ) WITHOUT ROWID""",
    ),
    # 2 (issue 12): each stored fingerprint says which scheme and key made it, so a record from
    # an older flowctl or another key is never compared as if it were current. Rows from before
    # are scheme 1 (unkeyed SHA-256); their parts, which hashed secret values without a key, are
    # emptied: under scheme 2 they are never compared, only shown as "the scheme changed".
    (
        "ALTER TABLE fingerprints ADD COLUMN scheme INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE fingerprints ADD COLUMN key_id TEXT NOT NULL DEFAULT ''",
        "UPDATE fingerprints SET parts = '{}' WHERE scheme = 1",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_MOVE_ASIDE_HINT = "run `flowctl doctor` to check it; `flowctl doctor --repair` salvages what it can and moves the bad file aside"


def db_path(state_dir: str | os.PathLike[str]) -> Path:
    """Where the database of ``state_dir`` lives."""
    return Path(state_dir) / DB_NAME


def state_error(path: str | os.PathLike[str], exc: sqlite3.Error) -> StateError:
    """Translate a sqlite3 error about ``path`` into a ``StateError`` with a way out."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StateError(
            f"state database {path} is locked by another process ({text})",
            hint="another flowctl is writing it; try again, or use another --state-dir",
        )
    if "unable to open" in text or "readonly" in text or "permission" in text.lower():
        return StateError(
            f"cannot open state database {path}: {text}",
            hint="check the permissions of the file and its folder, or use another --state-dir",
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StateError(f"state database {path} is corrupt ({text})", hint=_MOVE_ASIDE_HINT)
    return StateError(f"state database {path}: {text}", hint=_MOVE_ASIDE_HINT)


@contextlib.contextmanager
def translated(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn any sqlite3 error raised inside the block into a ``StateError`` about ``path``."""
    try:
        yield
    except sqlite3.Error as exc:
        raise state_error(path, exc) from exc


def connect(state_dir: str | os.PathLike[str], *, create: bool = True) -> sqlite3.Connection:
    """Open (and create or migrate) the state database of ``state_dir``.

    With ``create=False`` a missing database raises ``StateError`` instead of being created
    (read-only commands must not leave empty databases behind).
    Raises ``StateError`` when the file is corrupt, unreadable or from a newer flowctl.
    """
    path = db_path(state_dir)
    created = not path.exists()
    if created:
        if not create:
            raise StateError(
                f"no flowctl state in {Path(state_dir)} (no runs recorded yet)",
                hint="run a pipeline first, or point --state-dir / FLOWCTL_STATE_DIR at its state folder",
            )
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the state folder: 0700
        except OSError as exc:
            raise StateError(f"cannot create state folder {path.parent}: {exc.strerror}") from exc
    elif not os.access(path, os.R_OK):
        raise StateError(
            f"cannot read state database {path}: permission denied",
            hint="check the file's permissions, or use another --state-dir",
        )
    conn: sqlite3.Connection | None = None
    with translated(path):
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves and keep transactions short.
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            if created:  # 0600 before anything is written; SQLite gives -wal and -shm the same mode
                with contextlib.suppress(OSError):  # a file system without modes: the 0700 folder protects it
                    os.chmod(path, 0o600)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise StateError(f"state database {path} could not switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn, path)
        except BaseException:
            if conn is not None:
                conn.close()
            raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: str | os.PathLike[str]) -> int:
    """Bring the schema to ``SCHEMA_VERSION`` atomically; return the version found before."""
    found = schema_version(conn)
    if found == SCHEMA_VERSION:
        return found
    if found > SCHEMA_VERSION:
        raise _newer(path, found)
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated meanwhile.
        found = schema_version(conn)
        if found > SCHEMA_VERSION:
            raise _newer(path, found)
        if found == 0 and _has_tables(conn):
            raise StateError(
                f"{path} is a SQLite database but not flowctl's (it has tables and no schema version)",
                hint="use another --state-dir, or move the file aside with `flowctl doctor --move-aside`",
            )
        for statements in MIGRATIONS[found:]:
            for sql in statements:
                conn.execute(sql)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return found


def _has_tables(conn: sqlite3.Connection) -> bool:
    count: int = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    return count > 0


def _newer(path: str | os.PathLike[str], found: int) -> StateError:
    return StateError(
        f"state database {path} was written by a newer flowctl (schema {found}; this flowctl knows up to {SCHEMA_VERSION})",
        hint="upgrade flowctl, use another --state-dir, or start afresh with `flowctl doctor --move-aside`",
    )


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A short write transaction: BEGIN IMMEDIATE … COMMIT, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        _rollback(conn)
        raise
    conn.execute("COMMIT")


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


__all__ = [
    "DB_NAME",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "connect",
    "db_path",
    "migrate",
    "schema_version",
    "state_error",
    "transaction",
    "translated",
]
