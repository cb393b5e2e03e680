"""Opening the state database: pragmas, the versioned schema, forward migrations, error mapping.

Owns the one ``connect()`` of flowctl and every way opening can go wrong. The database lives at
``<state dir>/state.db`` (``.flowctl/`` beside the pipeline file unless ``--state-dir`` /
``FLOWCTL_STATE_DIR`` say otherwise). Durability: WAL journal with ``synchronous=NORMAL``: a
committed transaction survives the death of the process (``kill -9``), which is what resume needs;
only a power loss can drop the last few commits. Schema changes are additive migrations applied
in one ``BEGIN IMMEDIATE`` transaction, so a half-created or half-migrated schema never exists.

A new database is built whole under a temporary name and linked into place, so whatever sits at
``state.db`` was either made complete by flowctl or is not flowctl's. A database that is empty
(0 bytes), foreign (no flowctl schema), not SQLite, corrupt, unreadable, or written by a newer
flowctl raises ``StateError`` with a hint (``flowctl doctor``); it is never silently replaced by
an empty one. A full disk, an I/O error or a folder that cannot be written raise
``StorageError`` (exit 74) with a hint about the disk. Readers open the file read-only
(``connect_readonly``), so history commands work on a folder they cannot write. The tables
themselves are written by ``store.py`` and read by ``queries.py``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from flowctl.errors import StateError, StorageError
from flowctl.state.failpoint import Failpoints

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
    # 3: a run's chaos settings and the fault chaos injected into an attempt (issue 17: `chaos
    # check` tells injected failures from real ones, a resume keeps the faults spent); and each
    # item of a foreach step, committed as it happens (issue 15: the unit of resume and the
    # dead-letter queue, status 'dead-lettered', 'poisoned', 'dropped').
    (
        "ALTER TABLE runs ADD COLUMN chaos TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE attempts ADD COLUMN injected TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE items (
            run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            step TEXT NOT NULL,
            key TEXT NOT NULL,
            item TEXT NOT NULL DEFAULT 'null',
            batch INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            exit_code INTEGER,
            started_at REAL,
            finished_at REAL,
            duration REAL,
            error TEXT,
            tail TEXT NOT NULL DEFAULT '[]',
            log_path TEXT NOT NULL DEFAULT '',
            first_failure REAL,
            last_failure REAL,
            replays INTEGER NOT NULL DEFAULT 0,
            definition TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (run_id, step, key)
        ) WITHOUT ROWID""",
        "CREATE INDEX items_by_status ON items (status, run_id)",
    ),
    # 4 (issue 17: items are attempts too): the faults chaos injected into an item's attempts in
    # this run, "ATTEMPT:FAULT" comma-separated ("1:fail,2:kill"), so `chaos check` tells an item
    # dead-lettered by injected faults from a real failure and a resume keeps each item's `max`.
    (
        "ALTER TABLE items ADD COLUMN injected TEXT NOT NULL DEFAULT ''",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

def _move_aside_hint(path: str | os.PathLike[str]) -> str:
    return (f"run `{_doctor(path)}` to check it; `{_doctor(path, '--repair')}` salvages what it can and "
            "moves the bad file aside")


def _doctor(path: str | os.PathLike[str], *options: str) -> str:
    """The ``flowctl doctor`` command for the database at ``path`` (with --state-dir when needed)."""
    from flowctl.state.location import doctor_command

    return doctor_command(Path(path).parent, *options)


def db_path(state_dir: str | os.PathLike[str]) -> Path:
    """Where the database of ``state_dir`` lives."""
    return Path(state_dir) / DB_NAME


def state_error(path: str | os.PathLike[str], exc: sqlite3.Error) -> StateError:
    """Translate a sqlite3 error about ``path`` into a ``StateError`` with a way out: a
    ``StorageError`` (exit 74) when the storage failed (disk full, I/O error, not writable),
    whose hint is about the disk, never ``doctor --repair`` (the database is fine)."""
    text = str(exc)
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # the primary result code
    folder = Path(path).parent
    if code == sqlite3.SQLITE_FULL or "disk is full" in text:
        return StorageError(
            f"no space left on the disk that holds the state folder {folder} ({text})",
            hint=f"free space on the disk that holds {folder} (or point --state-dir at another disk); "
            "a run stopped by this goes on with `flowctl run PIPELINE --resume`",
        )
    if "locked" in text or "busy" in text:
        return StateError(
            f"state database {path} is locked by another process ({text})",
            hint="another flowctl is writing it; try again",
        )
    if code == sqlite3.SQLITE_READONLY or "readonly" in text:
        return StorageError(
            f"cannot write the state database {path}: {text}",
            hint=f"{folder} is read-only here: run as a user who can write it, or point --state-dir at a writable folder",
        )
    if code == sqlite3.SQLITE_IOERR or "disk I/O error" in text:
        return StorageError(
            f"reading or writing the state database {path} failed: {text}",
            hint=f"check the disk that holds {folder} (free space, the kernel log); if the disk is fine, "
            f"`{_doctor(path)}` checks the database",
        )
    if code == sqlite3.SQLITE_CANTOPEN or "unable to open" in text or "permission" in text.lower():
        return StorageError(
            f"cannot open state database {path}: {text}",
            hint="check the permissions of the file and its folder, or use another --state-dir",
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StateError(f"state database {path} is corrupt ({text})", hint=_move_aside_hint(path))
    return StateError(f"state database {path}: {text}", hint=_move_aside_hint(path))


@contextlib.contextmanager
def translated(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn any sqlite3 error raised inside the block into a ``StateError`` about ``path``."""
    try:
        yield
    except sqlite3.Error as exc:
        raise state_error(path, exc) from exc


def connect(state_dir: str | os.PathLike[str], *, create: bool = True) -> sqlite3.Connection:
    """Open (and create or migrate) the state database of ``state_dir`` for writing.

    With ``create=False`` a missing database raises ``StateError`` instead of being created
    (read-only commands must not leave empty databases behind). A new database is made whole
    under a temporary name and then linked into place, so a file at ``state.db`` that is empty
    or has no flowctl schema was never flowctl's, and is an error, not a fresh start (issue 12).
    Raises ``StateError`` when the file is empty, foreign, corrupt, unreadable or from a newer
    flowctl; ``StorageError`` (exit 74) when the disk is full or the folder not writable.
    """
    path = db_path(state_dir)
    if not _existing(path, create=create):
        _create(path)
    conn = _open(path)
    try:
        with translated(path):
            migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def connect_readonly(state_dir: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open the state database of ``state_dir`` for reading only (``runs``, ``show``, ``logs``,
    ``stats``): they work on a folder this user cannot write (see ``read_only``). A database from
    an older flowctl is upgraded first, which needs write access once.
    Raises ``StateError`` like ``connect``; ``StorageError`` when it cannot be opened at all."""
    path = db_path(state_dir)
    _existing(path, create=False)
    conn = read_only(path)
    with translated(path):
        try:
            found = schema_version(conn)
        except BaseException:
            conn.close()
            raise
    if found == SCHEMA_VERSION:
        return conn
    conn.close()
    if found > SCHEMA_VERSION:
        raise _newer(path, found)
    if found == 0:
        raise _foreign(path, "it has no flowctl schema")
    try:
        connect(state_dir, create=False).close()  # migrate once, through a writing connection
    except StorageError as exc:
        raise StorageError(
            f"state database {path} is from an older flowctl (schema {found}) and cannot be upgraded here: {exc.message}",
            hint="run any flowctl command on it once as a user who can write its folder",
        ) from exc
    return read_only(path)


def read_only(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A read-only connection to the database file ``path``, with no schema checks.

    ``mode=ro`` first: it reads the WAL, and needs the WAL's shared-memory index (``-shm``) to
    exist or be creatable. When it is absent and cannot be made (a read-only folder) nobody is
    writing the database, and ``immutable=1`` reads the main file without it; commits still in
    a WAL left without its index by a crashed writer are then not seen.
    Raises ``StorageError`` when neither way opens it.
    """
    from urllib.parse import quote

    target = "file:" + quote(os.path.abspath(path), safe="/")
    with translated(path):
        conn = sqlite3.connect(target + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            conn.execute("PRAGMA user_version").fetchone()  # opens the WAL and its index
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF != sqlite3.SQLITE_CANTOPEN:
                raise
        return sqlite3.connect(target + "?immutable=1", uri=True, isolation_level=None)


def _existing(path: Path, *, create: bool) -> bool:
    """Whether a database file is at ``path``; raise when there is none and ``create`` is off,
    or when what is there cannot be flowctl's (empty) or cannot be read."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        if create:
            return False
        raise StateError(
            f"no flowctl state in {path.parent} (no runs recorded yet)",
            hint="run a pipeline first, or point --state-dir / FLOWCTL_STATE_DIR at its state folder",
            usage=True,
        ) from None
    except OSError as exc:
        raise StorageError(f"cannot reach state database {path}: {exc.strerror}") from exc
    if not os.access(path, os.R_OK):
        raise StateError(
            f"cannot read state database {path}: permission denied",
            hint="check the file's permissions, or use another --state-dir",
        )
    if size == 0 and path.is_file():
        raise _foreign(path, "it is empty (0 bytes)")
    return True


def _create(path: Path) -> None:
    """Make a new database at ``path`` atomically: build it whole under a temporary name, then
    link it into place (if another process was quicker, its database is used)."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the state folder: 0700
    except OSError as exc:
        raise StorageError(
            f"cannot create state folder {path.parent}: {exc.strerror}",
            hint="check that its parent folder is writable and not full, or use another --state-dir",
        ) from exc
    _drop_dead_temps(path)
    temp = path.with_name(f"{_TEMP_PREFIX}{path.name}.new-{os.getpid()}-{os.urandom(3).hex()}")
    try:
        # 0600 before anything is written (SQLite gives -wal and -shm the same mode); the link
        # below keeps it. A file system without modes: the 0700 folder protects it.
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        conn = _open(temp)
        try:
            with translated(path):
                migrate(conn, temp, new=True)
        finally:
            conn.close()  # the last connection checkpoints the temporary WAL into the file
        Failpoints.from_environ(os.environ).hit("state.before-link")  # test-only (failpoint.py)
        if not path.exists():
            _drop_stale_wal(path)
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not path.exists():
                os.rename(temp, path)
    except OSError as exc:
        raise StorageError(
            f"cannot create state database {path}: {exc.strerror}",
            hint=f"check that {path.parent} is writable and not full, or use another --state-dir",
        ) from exc
    finally:
        for leftover in (temp, Path(f"{temp}-wal"), Path(f"{temp}-shm")):
            with contextlib.suppress(OSError):
                leftover.unlink()


_TEMP_PREFIX = "."


def _drop_dead_temps(path: Path) -> None:
    """Remove what a creator killed half way left (``.state.db.new-PID-*`` of a dead PID)."""
    from flowctl.run.procs import is_alive  # only when creating: readers need not import it

    for temp in path.parent.glob(f"{_TEMP_PREFIX}{path.name}.new-*"):
        pid = temp.name.rsplit(".new-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not is_alive(int(pid)):
            with contextlib.suppress(OSError):
                temp.unlink()


def _drop_stale_wal(path: Path) -> None:
    """Remove a ``-wal``/``-shm`` left without its database (someone deleted ``state.db``
    alone): SQLite would replay that WAL into the new database, which is not its database."""
    for side in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            side.unlink()


def _open(path: Path) -> sqlite3.Connection:
    """A writing connection to ``path`` with flowctl's pragmas (WAL, ``synchronous=NORMAL``)."""
    conn: sqlite3.Connection | None = None
    with translated(path):
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves and keep transactions short.
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise StateError(f"state database {path} could not switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            if conn is not None:
                conn.close()
            raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: str | os.PathLike[str], *, new: bool = False) -> int:
    """Bring the schema to ``SCHEMA_VERSION`` atomically; return the version found before.
    Only a database being created (``new``) may start from nothing."""
    found = schema_version(conn)
    if found == SCHEMA_VERSION:
        return found
    if found > SCHEMA_VERSION:
        raise _newer(path, found)
    if found == 0 and not new:
        raise _foreign(path, "it has tables and no schema version" if _has_tables(conn) else "it has no flowctl schema")
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated meanwhile.
        found = schema_version(conn)
        if found > SCHEMA_VERSION:
            raise _newer(path, found)
        if found == 0 and _has_tables(conn):
            raise _foreign(path, "it has tables and no schema version")
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


def _foreign(path: str | os.PathLike[str], why: str) -> StateError:
    return StateError(
        f"{path} is not a flowctl state database: {why}",
        hint=f"run `{_doctor(path)}` to look at it; `{_doctor(path, '--repair')}` keeps it aside and starts "
        "a new database (or use another --state-dir)",
    )


def _newer(path: str | os.PathLike[str], found: int) -> StateError:
    return StateError(
        f"state database {path} was written by a newer flowctl (schema {found}; this flowctl knows up to {SCHEMA_VERSION})",
        hint=f"upgrade flowctl, use another --state-dir, or start afresh with `{_doctor(path, '--move-aside')}`",
        usage=True,
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
    "connect_readonly",
    "db_path",
    "migrate",
    "read_only",
    "schema_version",
    "state_error",
    "transaction",
    "translated",
]
