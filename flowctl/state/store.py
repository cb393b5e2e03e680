"""``SqliteRunStore``: the runner's ``RunStore`` port backed by the state database.

Owns turning events (``run/events.py``) into rows of ``runs``, ``steps`` and ``attempts``, and the
commit policy. Every record carries the run id (the correlation id). Reads live in
``queries.py``; the schema in ``db.py``.

Commit policy (why it is cheap and still safe): rows are buffered in memory and written in one
short transaction when

* ``flush()`` is called: the scheduler records the events of one turn of its loop, flushes,
  and only then starts the attempts of that turn and shows the events, so a finished step is on
  disk before anything it unblocks starts or anyone sees it, and every attempt is on disk as
  started before its process exists (issue 12: a kill loses at most what was running);
* a ``RunFinished`` arrives;
* the oldest buffered row is older than ``max_delay`` seconds (a safety net for callers that
  flush rarely) — except while the run's own ``RunStarted`` row waits: a run's record and what
  its first turn records (the steps a resume reuses, the up-to-date ones) land in one
  transaction, so a kill never leaves a resume's run recorded without its reuse decisions
  (issue 12: the next ``--resume`` would continue the empty run and redo everything).

With WAL and ``synchronous=NORMAL`` a commit is a write into the WAL file without fsync: it
survives the death of the process (``kill -9``), and costs tens of microseconds. A power loss
may drop the last commits; resume then re-runs those steps, which is safe (steps are the unit
of idempotency).

State loss is never silent (issue 12): before each commit the store checks that ``state.db``
(and what else it ``watch``es: the run's lock file) is still the file it opened, and raises
``StorageError`` (exit 74) when it was deleted or replaced; a full disk or an I/O error is a
``StorageError`` too. After one, the store writes nothing more, except ``abandon``: recording the
run as interrupted when the database is still the one it opened and can take it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowctl.errors import StateError, StorageError
from flowctl.run.events import (
    AttemptFinished,
    AttemptStarted,
    Event,
    ItemFinished,
    ItemStarted,
    ItemStatus,
    RetryScheduled,
    RunFinished,
    RunId,
    RunStarted,
    StepFinished,
    StepReady,
    StepStatus,
)
from flowctl.state import db
from flowctl.state.failpoint import Failpoints
from flowctl.state.files import FileIdentity
from flowctl.state.interrupt import interrupt_run

if TYPE_CHECKING:
    from flowctl.fingerprint import Fingerprint
    from flowctl.run.options import Carried

_Row = tuple[str, tuple[Any, ...]]

# issue 15: one row per item; a batch's attempt writes one per item of it.
_ITEM_STARTED = """INSERT INTO items (run_id, step, key, item, batch, status, attempts, started_at, log_path, definition,
    replays, injected) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)
    ON CONFLICT (run_id, step, key) DO UPDATE SET status = 'running', attempts = excluded.attempts, item = excluded.item,
    started_at = COALESCE(items.started_at, excluded.started_at), log_path = excluded.log_path,
    batch = excluded.batch, definition = excluded.definition, finished_at = NULL, replays = excluded.replays,
    injected = CASE WHEN excluded.injected = '' THEN items.injected WHEN items.injected = '' THEN excluded.injected
                    ELSE items.injected || ',' || excluded.injected END"""
_ITEM_FINISHED = """INSERT INTO items (run_id, step, key, item, status, attempts, exit_code, finished_at, duration,
    error, tail, log_path, first_failure, last_failure, definition, replays) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (run_id, step, key) DO UPDATE SET status = excluded.status,
    attempts = MAX(items.attempts, excluded.attempts), exit_code = excluded.exit_code,
    finished_at = excluded.finished_at, duration = excluded.duration, error = excluded.error,
    tail = excluded.tail, log_path = CASE excluded.log_path WHEN '' THEN items.log_path ELSE excluded.log_path END,
    first_failure = COALESCE(items.first_failure, excluded.first_failure),
    last_failure = COALESCE(excluded.last_failure, items.last_failure)"""
_STEP_ITEMS_RUNNING = """INSERT INTO steps (run_id, step, status, started_at, attempts) VALUES (?, ?, 'running', ?, 0)
    ON CONFLICT (run_id, step) DO UPDATE SET status = 'running',
    started_at = COALESCE(steps.started_at, excluded.started_at)"""
_FAILED_ITEM = frozenset({ItemStatus.RETRYING, ItemStatus.DEAD})

_INSERT_RUN = """INSERT INTO runs (run_id, pipeline, pipeline_path, status, started_at, steps, params,
    selection, concurrency, resumed_from, provenance, host, pid, fire_time, chaos)
    VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
# `dlq replay` continues a run in place (issue 15): its record goes on, not a new one.
_CONTINUE_RUN = """UPDATE runs SET status = 'running', finished_at = NULL, root_failure = NULL, host = ?, pid = ?
    WHERE run_id = ?"""
_RUN_CONTINUED = """UPDATE runs SET status = ?, finished_at = ?, duration = coalesce(duration, 0) + ?, counts = ?,
    root_failure = ? WHERE run_id = ?"""
_INSERT_PENDING = """INSERT OR IGNORE INTO steps (run_id, step, position, status) VALUES (?, ?, ?, 'pending')"""
_READY = """INSERT INTO steps (run_id, step, status, ready_at, queue_depth) VALUES (?, ?, 'ready', ?, ?)
    ON CONFLICT (run_id, step) DO UPDATE SET status = 'ready',
    ready_at = COALESCE(steps.ready_at, excluded.ready_at), queue_depth = excluded.queue_depth"""
_ATTEMPT_STARTED = """INSERT OR REPLACE INTO attempts (run_id, step, attempt, kind, max_attempts,
    started_at, host, fingerprint, command, log_path, injected) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_STEP_RUNNING = """INSERT INTO steps (run_id, step, status, started_at, attempts, fingerprint)
    VALUES (?, ?, 'running', ?, ?, ?)
    ON CONFLICT (run_id, step) DO UPDATE SET status = 'running',
    started_at = COALESCE(steps.started_at, excluded.started_at),
    attempts = max(steps.attempts, excluded.attempts),
    fingerprint = CASE WHEN excluded.fingerprint = '' THEN steps.fingerprint ELSE excluded.fingerprint END"""
# A step that became ready and started in the same turn: one row write instead of two.
_READY_RUNNING = """INSERT INTO steps (run_id, step, status, ready_at, queue_depth, started_at, attempts,
    fingerprint) VALUES (?, ?, 'running', ?, ?, ?, ?, ?)
    ON CONFLICT (run_id, step) DO UPDATE SET status = 'running',
    ready_at = COALESCE(steps.ready_at, excluded.ready_at), queue_depth = excluded.queue_depth,
    started_at = COALESCE(steps.started_at, excluded.started_at),
    attempts = max(steps.attempts, excluded.attempts),
    fingerprint = CASE WHEN excluded.fingerprint = '' THEN steps.fingerprint ELSE excluded.fingerprint END"""
_FOLDED = ""  # a buffered row merged into a later one: skipped at commit
_ATTEMPT_FINISHED = """INSERT INTO attempts (run_id, step, attempt, kind, started_at, finished_at,
    outcome, exit_code, duration, log_path, error, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (run_id, step, attempt) DO UPDATE SET finished_at = excluded.finished_at,
    host = CASE WHEN excluded.host = '' THEN attempts.host ELSE excluded.host END,
    outcome = excluded.outcome, exit_code = excluded.exit_code, duration = excluded.duration,
    log_path = CASE WHEN excluded.log_path = '' THEN attempts.log_path ELSE excluded.log_path END,
    error = excluded.error"""
_RETRY = """UPDATE attempts SET retry_delay = ? WHERE run_id = ? AND step = ? AND attempt = ?"""
_STEP_FINISHED = """INSERT INTO steps (run_id, step, status, finished_at, attempts, duration, reason,
    fingerprint, exit_code, outputs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (run_id, step) DO UPDATE SET status = excluded.status,
    finished_at = excluded.finished_at, attempts = max(steps.attempts, excluded.attempts),
    duration = excluded.duration, reason = excluded.reason,
    fingerprint = CASE WHEN excluded.fingerprint = '' THEN steps.fingerprint ELSE excluded.fingerprint END,
    exit_code = excluded.exit_code, outputs = excluded.outputs"""
_RUN_FINISHED = """UPDATE runs SET status = ?, finished_at = ?, duration = ?, counts = ?, root_failure = ?
    WHERE run_id = ?"""


_SAVE_FINGERPRINT = "INSERT OR IGNORE INTO fingerprints (digest, parts, scheme, key_id) VALUES (?, ?, ?, ?)"


def _fingerprint_row(fp: Fingerprint) -> tuple[str, str, int, str]:
    return (fp.digest, _json(dict(fp.parts)), fp.scheme, fp.key_id)


def _json(value: Any) -> str:
    if not value and isinstance(value, (dict, list, tuple)):  # most steps declare no outputs
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


class SqliteRunStore:
    """Records a run's events in ``<state_dir>/state.db``; see the module docstring for commits.

    ``fingerprints`` (step → digest) fills in events whose ``fingerprint`` is empty, so the
    scheduler need not know about fingerprints. ``outputs_of(step)`` hashes a step's declared
    outputs when it succeeds; ``carried_outputs`` are the hashes a reused or up-to-date step
    keeps from its earlier success (both feed the next up-to-date check). ``pipeline_path``
    replaces the path in ``RunStarted`` (runs are found by their file's real path).
    Raises ``StateError`` when the database is bad.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        fingerprints: Mapping[str, str] | None = None,
        outputs_of: Callable[[str], Mapping[str, str]] | None = None,
        carried_outputs: Mapping[str, Mapping[str, str]] | None = None,
        pipeline_path: str | None = None,
        max_delay: float = 0.2,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.path = db.db_path(state_dir)
        self._conn: sqlite3.Connection | None = db.connect(state_dir)
        try:
            self._watched = [FileIdentity.of_path(self.path, "state database")]
        except OSError as exc:
            self._conn.close()
            raise StorageError(f"state database {self.path} vanished as it was opened: {exc.strerror}") from exc
        self._run_id = ""  # the run being recorded (from RunStarted), for messages and abandon
        self._failed: StorageError | None = None  # once storage failed, nothing more is written
        self._fingerprints = dict(fingerprints or {})
        self._outputs_of = outputs_of
        self._carried = dict(carried_outputs or {})
        self._pipeline_path = pipeline_path
        self._buffer: list[_Row] = []
        self._ready_rows: dict[tuple[str, str], int] = {}  # (run, step) -> its READY row in the buffer
        self._oldest = 0.0
        self._starting = False  # a RunStarted is buffered: no commit before flush()
        self._max_delay = max_delay
        self._lock = threading.Lock()
        self._host = os.uname().nodename
        self._failpoints = Failpoints.from_environ(os.environ)  # test-only (state/failpoint.py)
        self._in_place: dict[str, str] | None = None  # `dlq replay`: the run's steps as recorded
        self._kept: dict[str, str] = {}  # ... those it keeps: step -> the status they keep

    # -- the RunStore port ---------------------------------------------------------------------

    def record(self, event: Event) -> None:
        """Buffer the rows ``event`` implies; commit now when the event is a checkpoint."""
        rows = self._rows(event)
        if not rows:
            return
        with self._lock:
            buffer = self._buffer
            if not buffer:
                self._oldest = time.monotonic()
            for row in rows:
                sql, params = row
                if sql is _READY:
                    self._ready_rows[(params[0], params[1])] = len(buffer)
                elif sql is _STEP_RUNNING:
                    at = self._ready_rows.pop((params[0], params[1]), None)
                    if at is not None:  # ready and started in one turn: write the step once
                        ready = buffer[at][1]
                        buffer[at] = (_FOLDED, ())
                        row = (_READY_RUNNING, (*ready, *params[2:]))
                buffer.append(row)
            if isinstance(event, RunStarted):
                self._starting = True  # held back until flush(): see the module docstring
            elif isinstance(event, RunFinished) or (
                not self._starting and time.monotonic() - self._oldest >= self._max_delay
            ):
                self._commit()

    def flush(self) -> None:
        """Commit everything recorded so far (cheap when nothing is pending)."""
        with self._lock:
            if self._buffer:
                self._commit()

    def close(self) -> None:
        with self._lock:
            if self._conn is None:
                return
            try:
                if self._buffer and self._failed is None:
                    self._commit()
            finally:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> SqliteRunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def watch(self, identity: FileIdentity) -> None:
        """Also check, before each commit, that ``identity``'s path still names its file (the
        run's lock file: a run whose lock was deleted or replaced no longer excludes others)."""
        self._watched.append(identity)

    def abandon(self, reason: str) -> bool:
        """The run stops on an error: record it as interrupted (its running steps and unfinished
        attempts too) when that is still possible, so it is never left ``running``. Never
        raises; returns whether it was recorded. Writes nothing into a database that was
        deleted or replaced (that file is not this run's any more)."""
        with self._lock:
            self._buffer.clear()
            self._ready_rows.clear()
            if self._conn is None or not self._run_id or any(w.changed() for w in self._watched[:1]):
                return False
            try:
                with db.translated(self.path), db.transaction(self._conn) as conn:
                    self._failpoints.hit("state.before-commit")
                    interrupt_run(conn, self._run_id, reason, time.time())
            except (StateError, sqlite3.Error):
                return False
            return True

    # -- writes outside the event stream ---------------------------------------------------------

    def set_fingerprints(self, fingerprints: Mapping[str, str]) -> None:
        """Digests used for events that carry none (step → digest)."""
        self._fingerprints.update(fingerprints)

    def set_carried_outputs(self, outputs: Mapping[str, Mapping[str, str]]) -> None:
        """Output hashes reused / up-to-date steps keep from their earlier success."""
        self._carried.update(outputs)

    def save_fingerprints(self, fingerprints: Iterable[Fingerprint]) -> None:
        """Remember what each fingerprint digest was made of (for ``plan --explain``) and with
        which scheme and key (so records of another scheme or key are never compared)."""
        rows = {fp.digest: _fingerprint_row(fp) for fp in fingerprints}
        with self._lock, self._transaction() as conn:
            conn.executemany(_SAVE_FINGERPRINT, list(rows.values()))

    def add_fingerprint(self, step: str, fp: Fingerprint) -> None:
        """A step's fingerprint taken again as it starts: used for its events from now on, and
        its parts saved with the next checkpoint (the one that records the step's start)."""
        with self._lock:
            self._fingerprints[step] = fp.digest
            if not self._buffer:
                self._oldest = time.monotonic()
            self._buffer.append((_SAVE_FINGERPRINT, _fingerprint_row(fp)))

    def mark_interrupted(self, pipeline: str, *, except_run: str | None = None) -> tuple[str, ...]:
        """Record runs of ``pipeline`` still marked running as interrupted (the caller holds the
        pipeline's lock, so none of them is alive); return their ids. Their unfinished attempts
        and steps become interrupted too: never succeeded."""
        with self._lock, self._transaction() as conn:
            ids = tuple(
                r[0]
                for r in conn.execute(
                    "SELECT run_id FROM runs WHERE pipeline = ? AND status = 'running' AND run_id != ?",
                    (pipeline, except_run or ""),
                )
            )
            for run_id in ids:
                interrupt_run(conn, run_id, "the runner died while it ran", None)
        return ids

    def continue_in_place(self, run_id: str) -> dict[str, int]:
        """``dlq replay``: the run about to start is ``run_id`` itself, going on. Its record is
        updated, not inserted; a step it does not run keeps its row (never becomes ``reused``);
        an item the replay leaves alone keeps its row. Returns the attempts each step made so far
        (new ones are numbered after them)."""
        from flowctl.state.items import attempts_made

        with db.translated(self.path):
            conn = self._connection()
            self._in_place = {str(step): str(status) for step, status in
                              conn.execute("SELECT step, status FROM steps WHERE run_id = ?", (run_id,))}
            return attempts_made(conn, run_id)

    def items_done(self, run_id: str | None, pipeline: str, fingerprints: Mapping[str, str]) -> dict[str, dict[str, Carried]]:
        """Per foreach step (its current fingerprint given), the items that need no new attempt:
        key → canonical item (see ``state.items.done_items``)."""
        from flowctl.state.items import done_items

        with db.translated(self.path):
            return done_items(self._connection(), run_id, pipeline, fingerprints)

    def replay_plan(self, run_id: str, step: str, keys: tuple[str, ...]) -> tuple[dict[str, Carried], dict[str, Carried]]:
        """What ``dlq replay`` keeps and what it sends again (``state.items.replay_plan``)."""
        from flowctl.state.items import replay_plan

        with db.translated(self.path):
            return replay_plan(self._connection(), run_id, step, keys)

    def latest_results(self, pipeline: str, steps: list[str], name: str = "results.jsonl") -> dict[str, str]:
        """The file ``name`` of each of these steps in the latest run it succeeded in (a foreach
        step's ``results.jsonl``, a producer's ``stdout.jsonl``)."""
        from flowctl.state.items import latest_results

        with db.translated(self.path):
            return latest_results(self._connection(), str(Path(self.path).parent / "runs"), pipeline, steps, name)

    # -- internals ---------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StateError(f"state database {self.path} is closed")
        return self._conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Every write of the store: one short transaction, errors as ``StateError``, the files
        checked first, and the test-only failpoints around its commit."""
        conn = self._connection()
        if self._failed is not None:
            raise self._failed
        try:
            doing = f"run {self._run_id}" if self._run_id else "flowctl"
            for identity in self._watched:
                identity.check(doing)
            with db.translated(self.path):
                with db.transaction(conn):
                    yield conn
                    self._failpoints.hit("state.before-commit")
                self._failpoints.hit("state.after-commit")
        except StorageError as exc:
            self._failed = exc
            raise

    def _commit(self) -> None:
        rows, self._buffer = self._buffer, []
        self._ready_rows.clear()
        self._starting = False
        with self._transaction() as conn:
            # Consecutive rows with the same statement go through one executemany.
            start = 0
            while start < len(rows):
                sql = rows[start][0]
                end = start + 1
                while end < len(rows) and rows[end][0] is sql:
                    end += 1
                if sql is _FOLDED:
                    pass
                elif end - start == 1:
                    conn.execute(sql, rows[start][1])
                else:
                    conn.executemany(sql, [params for _, params in rows[start:end]])
                start = end

    def _fingerprint(self, step: str, given: str) -> str:
        return given or self._fingerprints.get(step, "")

    def _rows(self, event: Event) -> list[_Row]:
        if isinstance(event, StepReady):
            return [(_READY, (event.run_id, event.step, event.at, event.queue_depth))]
        if isinstance(event, AttemptStarted):
            fp = self._fingerprint(event.step, event.fingerprint)
            host = event.host or self._host
            return [
                (
                    _ATTEMPT_STARTED,
                    (event.run_id, event.step, event.attempt, event.kind.value, event.max_attempts,
                     event.at, host, fp, event.command, event.log_path, event.injected),
                ),
                (_STEP_RUNNING, (event.run_id, event.step, event.at, event.attempt, fp)),
            ]
        if isinstance(event, AttemptFinished):
            return [
                (
                    _ATTEMPT_FINISHED,
                    (event.run_id, event.step, event.attempt, event.kind.value, event.at - event.duration,
                     event.at, event.outcome.value, event.exit_code, event.duration, event.log_path,
                     event.error, getattr(event, "host", "")),
                )
            ]
        if isinstance(event, StepFinished):
            kept = self._in_place.get(event.step) if self._in_place is not None else None
            if kept is not None and event.status in (StepStatus.REUSED, StepStatus.UP_TO_DATE):
                self._kept[event.step] = kept  # continued in place: its row already says how it ended
                return []
            outputs = event.outputs
            if not outputs:
                if event.status is StepStatus.SUCCEEDED and self._outputs_of is not None:
                    outputs = self._outputs_of(event.step)
                elif event.status in (StepStatus.REUSED, StepStatus.UP_TO_DATE):
                    outputs = self._carried.get(event.step, {})
            return [
                (
                    _STEP_FINISHED,
                    (event.run_id, event.step, event.status.value, event.at, event.attempts, event.duration,
                     event.reason, self._fingerprint(event.step, event.fingerprint), event.exit_code,
                     _json(dict(outputs))),
                )
            ]
        if isinstance(event, RetryScheduled):
            return [(_RETRY, (event.delay, event.run_id, event.step, event.next_attempt - 1))]
        if isinstance(event, RunStarted):
            return self._run_started(event)
        if isinstance(event, RunFinished):
            counts = dict(event.counts)
            for status in self._kept.values():  # counted as the rows say
                counts[StepStatus.REUSED.value] = counts.get(StepStatus.REUSED.value, 0) - 1
                counts[status] = counts.get(status, 0) + 1
            counts = {k: v for k, v in counts.items() if v > 0}
            return [
                (
                    _RUN_FINISHED if self._in_place is None else _RUN_CONTINUED,
                    (event.status.value, event.at, event.duration, _json(counts),
                     event.root_failure, event.run_id),
                )
            ]
        if isinstance(event, ItemStarted):
            fault = f"{event.attempt}:{event.injected}" if event.injected else ""  # issue 17
            rows: list[_Row] = [(_ITEM_STARTED, (event.run_id, event.step, key, item, event.batch, event.attempt,
                                                 event.at, event.log_path, self._fingerprint(event.step, ""), event.replays,
                                                 fault))
                                for key, item in zip(event.keys, event.items, strict=True)]
            return [*rows, (_STEP_ITEMS_RUNNING, (event.run_id, event.step, event.at))]
        if isinstance(event, ItemFinished):
            if event.kept:
                return []
            failed = event.at if event.status in _FAILED_ITEM else None
            items = event.items or ("null",) * len(event.keys)
            tail = _json(list(event.tail))
            return [(_ITEM_FINISHED, (event.run_id, event.step, key, item, event.status.value, event.attempt,
                                      event.exit_code, event.at, event.duration, event.error, tail, event.log_path,
                                      failed, failed, self._fingerprint(event.step, ""), event.replays))
                    for key, item in zip(event.keys, items, strict=True)]
        return []  # OutputLine: the log files hold output

    def _run_started(self, event: RunStarted) -> list[_Row]:
        self._run_id = event.run_id
        if self._in_place is not None:
            return [(_CONTINUE_RUN, (self._host, os.getpid(), event.run_id)),
                    *((_INSERT_PENDING, (event.run_id, step, i)) for i, step in enumerate(event.steps))]
        fire_time = getattr(event, "fire_time", None)  # set by scheduled runs (cron issue)
        rows: list[_Row] = [
            (
                _INSERT_RUN,
                (event.run_id, event.pipeline, self._pipeline_path or event.pipeline_path, event.at, _json(list(event.steps)),
                 _json(dict(event.params)), _json(dict(event.selection)), event.concurrency,
                 event.resumed_from, _json(dict(event.provenance)), self._host, os.getpid(), fire_time,
                 event.chaos),
            )
        ]
        rows.extend((_INSERT_PENDING, (event.run_id, step, i)) for i, step in enumerate(event.steps))
        return rows


__all__ = ["RunId", "SqliteRunStore"]
