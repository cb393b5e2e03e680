"""Read queries over recorded runs: list, find by id, one run in detail, last successes, pruning.

Owns every SELECT (and the DELETEs of ``gc``) on the state database; returns ``run_records`` values,
and the one resolution of a run id (``find_run``: an id, a unique prefix, ``latest``, ``latest~N``).
The functions take an open connection (``db.connect``) and raise ``StateError`` on a bad
database, ``UsageError`` for an unknown or ambiguous run id. Lock-aware views (a "running" run
whose runner died) are in ``overview.py``.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flowctl.errors import UsageError
from flowctl.run.events import StepStatus
from flowctl.state.run_records import (
    SUCCESS_STATUSES,
    AttemptRecord,
    LastSuccess,
    ResumedRun,
    RunDetail,
    RunRecord,
    StepOutcome,
    StepRecord,
    StoredFingerprint,
    loads,
)

_RUN_COLUMNS = (
    "run_id, pipeline, pipeline_path, status, started_at, finished_at, duration, steps, params, "
    "selection, concurrency, resumed_from, provenance, counts, root_failure, host, pid, fire_time, chaos"
)
_STEP_COLUMNS = (
    "run_id, step, position, status, ready_at, queue_depth, started_at, finished_at, attempts, "
    "duration, exit_code, reason, fingerprint, outputs"
)
_ATTEMPT_COLUMNS = (
    "run_id, step, attempt, kind, max_attempts, started_at, finished_at, outcome, exit_code, "
    "duration, host, fingerprint, command, log_path, error, retry_delay, injected"
)


def _run(row: Sequence[Any], counts: Mapping[str, int] | None = None) -> RunRecord:
    stored_counts = loads(row[13], {})
    return RunRecord(
        run_id=row[0],
        pipeline=row[1],
        pipeline_path=row[2],
        status=row[3],
        started_at=row[4],
        finished_at=row[5],
        duration=row[6],
        steps=tuple(loads(row[7], [])),
        params=loads(row[8], {}),
        selection=loads(row[9], {}),
        concurrency=row[10],
        resumed_from=row[11],
        provenance=loads(row[12], {}),
        counts=dict(counts) if counts is not None else stored_counts,
        root_failure=row[14],
        host=row[15],
        pid=row[16],
        fire_time=row[17],
        chaos=row[18],
    )


def _step(row: Sequence[Any], attempts: tuple[AttemptRecord, ...] = ()) -> StepRecord:
    return StepRecord(
        run_id=row[0], step=row[1], position=row[2], status=row[3], ready_at=row[4], queue_depth=row[5],
        started_at=row[6], finished_at=row[7], attempts=row[8], duration=row[9], exit_code=row[10],
        reason=row[11], fingerprint=row[12], outputs=loads(row[13], {}), attempt_records=attempts,
    )


def _attempt(row: Sequence[Any]) -> AttemptRecord:
    return AttemptRecord(*row)


def _step_counts(conn: sqlite3.Connection, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {run_id: {} for run_id in run_ids}
    if not run_ids:
        return counts
    marks = ",".join("?" * len(run_ids))
    for run_id, status, n in conn.execute(
        f"SELECT run_id, status, count(*) FROM steps WHERE run_id IN ({marks}) GROUP BY run_id, status",
        tuple(run_ids),
    ):
        counts[run_id][status] = n
    return counts


def _where(pipeline: str | None, since: float | None = None) -> tuple[str, list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if pipeline is not None:
        where.append("(pipeline = ? OR pipeline_path = ?)")
        args += [pipeline, pipeline]
    if since is not None:
        where.append("started_at >= ?")
        args.append(since)
    return (" WHERE " + " AND ".join(where) if where else ""), args


def list_runs(
    conn: sqlite3.Connection,
    pipeline: str | None = None,
    *,
    limit: int | None = 20,
    since: float | None = None,
    offset: int = 0,
) -> tuple[RunRecord, ...]:
    """The most recent runs first (of one pipeline when given), with step counts by status;
    ``offset`` skips that many of the newest."""
    where, args = _where(pipeline, since)
    sql = f"SELECT {_RUN_COLUMNS} FROM runs{where} ORDER BY started_at DESC, run_id DESC"
    if limit is not None or offset:
        sql += f" LIMIT {-1 if limit is None else int(limit)} OFFSET {int(offset)}"
    rows = conn.execute(sql, args).fetchall()
    counts = _step_counts(conn, [r[0] for r in rows])
    return tuple(_run(r, counts[r[0]]) for r in rows)


def count_runs(conn: sqlite3.Connection, pipeline: str | None = None) -> int:
    """How many runs are recorded (of one pipeline when given)."""
    where, args = _where(pipeline)
    return int(conn.execute(f"SELECT count(*) FROM runs{where}", args).fetchone()[0])


def pipeline_names(conn: sqlite3.Connection) -> tuple[str, ...]:
    """The names of the pipelines with recorded runs, sorted."""
    return tuple(n for (n,) in conn.execute("SELECT DISTINCT pipeline FROM runs ORDER BY pipeline"))


#: ``latest`` is the newest run, ``latest~N`` the N-th before it (as git's ``HEAD~N``).
_LATEST = re.compile(r"latest(?:~(?P<back>[0-9]+))?")
LATEST = "latest"


def is_latest(run_id: str) -> bool:
    """Whether ``run_id`` is meant as ``latest`` or ``latest~N`` (well formed or not)."""
    return run_id == LATEST or run_id.startswith(LATEST + "~")


_PREFIX = "run_id LIKE ? ESCAPE '\\'"


def _prefix(run_id: str) -> str:
    return run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def has_run(conn: sqlite3.Connection, run_id: str) -> bool:
    """Whether a run id equal to or starting with ``run_id`` is recorded."""
    return conn.execute(f"SELECT 1 FROM runs WHERE {_PREFIX} LIMIT 1", (_prefix(run_id),)).fetchone() is not None


def find_run(conn: sqlite3.Connection, run_id: str, pipeline: str | None = None) -> RunRecord:
    """The run ``run_id`` names: a run id, a unique prefix of one, ``latest`` (the newest run) or
    ``latest~N`` (the N-th before it). ``pipeline`` (a name or a recorded file path) narrows
    ``latest`` to that pipeline's runs. Every command that takes a run id resolves it here.

    Raises ``UsageError`` for an unknown or ambiguous id, or a ``latest~N`` beyond the oldest run.
    """
    if is_latest(run_id):
        return _nth_latest(conn, run_id, pipeline)
    row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        rows = conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE {_PREFIX} ORDER BY run_id LIMIT 6", (_prefix(run_id),)
        ).fetchall()
        if len(rows) > 1:
            shown = ", ".join(r[0] for r in rows[:5])
            raise UsageError(f"run id {run_id!r} is ambiguous: {shown}", hint="give more of the id")
        if not rows:
            raise UsageError(f"no run with id {run_id!r}", hint="`flowctl runs` lists recorded runs")
        row = rows[0]
    counts = _step_counts(conn, [row[0]])
    return _run(row, counts[row[0]])


def _nth_latest(conn: sqlite3.Connection, text: str, pipeline: str | None) -> RunRecord:
    match = _LATEST.fullmatch(text)
    if match is None:
        raise UsageError(
            f"{text!r} is not a run id", hint="use latest (the newest run) or latest~N (the N-th before it), e.g. latest~1"
        )
    back = int(match["back"] or 0)
    found = list_runs(conn, pipeline, limit=1, offset=back)
    if found:
        return found[0]
    total = count_runs(conn, pipeline)
    of = f" of {pipeline}" if pipeline else ""
    if not total:
        raise UsageError(f"no runs recorded{of}, so there is no {text}", hint="`flowctl runs` lists recorded runs")
    oldest = "latest" if total == 1 else f"latest~{total - 1}"
    raise UsageError(
        f"there is no {text}: {total} run{'s' * (total != 1)}{of} recorded, the oldest is {oldest}",
        hint="`flowctl runs` lists recorded runs",
    )


def latest_run(conn: sqlite3.Connection, pipeline: str) -> RunRecord | None:
    """The most recent run of ``pipeline`` (by name or path), or None."""
    runs = list_runs(conn, pipeline, limit=1)
    return runs[0] if runs else None


def run_detail(conn: sqlite3.Connection, run_id: str, pipeline: str | None = None) -> RunDetail:
    """One run (``find_run`` resolves ``run_id``) with every step (in plan order), every attempt
    and every item (a resume reads less: ``resumed_run``). Raises ``UsageError``."""
    from flowctl.state.items import items_of

    run = find_run(conn, run_id, pipeline)
    attempts: dict[str, list[AttemptRecord]] = {}
    for row in conn.execute(
        f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE run_id = ? ORDER BY step, attempt", (run.run_id,)
    ):
        attempts.setdefault(row[1], []).append(_attempt(row))
    steps = tuple(
        _step(row, tuple(attempts.get(row[1], ())))
        for row in conn.execute(
            f"SELECT {_STEP_COLUMNS} FROM steps WHERE run_id = ? ORDER BY position, step", (run.run_id,)
        )
    )
    return RunDetail(run=run, steps=steps, items=tuple(items_of(conn, run.run_id)))


def resumed_run(conn: sqlite3.Connection, run_id: str) -> ResumedRun:
    """The run ``run_id`` (``find_run``) with how each of its steps ended, for deciding its
    resume. Raises ``UsageError``."""
    run = find_run(conn, run_id)
    rid = run.run_id
    outcomes = {
        step: StepOutcome(rid, step, status, fingerprint, loads(outputs, {}))
        for step, status, fingerprint, outputs in conn.execute(
            "SELECT step, status, fingerprint, outputs FROM steps WHERE run_id = ?", (rid,)
        )
    }
    return ResumedRun(run, outcomes)


def known_run_ids(conn: sqlite3.Connection, run_ids: Sequence[str]) -> set[str]:
    """Which of ``run_ids`` the database records."""
    found: set[str] = set()
    for start in range(0, len(run_ids), 500):
        chunk = list(run_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        found.update(r for (r,) in conn.execute(f"SELECT run_id FROM runs WHERE run_id IN ({marks})", chunk))
    return found


def last_successes(conn: sqlite3.Connection, pipeline: str, *, folder: str | None = None) -> dict[str, LastSuccess]:
    """For each step of ``pipeline``, its most recent success (succeeded, reused, up to date);
    with ``folder``, only of runs whose pipeline file was in that folder (a ``run --ref`` runs
    in a worktree of its own: its successes say nothing of this work tree's files). Runs that
    recorded no pipeline file count as in every folder."""
    marks = ",".join("?" * len(SUCCESS_STATUSES))
    where, args = "", ()
    if folder is not None:
        paths = tuple(p for (p,) in conn.execute("SELECT DISTINCT pipeline_path FROM runs WHERE pipeline = ?",
                                                  (pipeline,)) if not p or os.path.dirname(p) == folder)
        where, args = f" AND r.pipeline_path IN ({','.join('?' * len(paths)) or 'NULL'})", paths
    # SQLite returns the bare columns of the row holding max(): one row per step.
    rows = conn.execute(
        f"""SELECT s.step, s.run_id, s.fingerprint, s.outputs, max(s.finished_at)
            FROM steps s JOIN runs r ON r.run_id = s.run_id
            WHERE r.pipeline = ? AND s.status IN ({marks}){where}
            GROUP BY s.step""",
        (pipeline, *SUCCESS_STATUSES, *args),
    )
    return {
        step: LastSuccess(step=step, run_id=run_id, fingerprint=fp, outputs=loads(outputs, {}), finished_at=at)
        for step, run_id, fp, outputs, at in rows
    }


def step_durations(conn: sqlite3.Connection, pipeline: str, *, runs: int = 5) -> dict[str, list[float]]:
    """Each step's durations in the ``runs`` most recent runs of ``pipeline`` (by name) where it
    succeeded (first start to last end, retries included), newest run first."""
    rows = conn.execute(
        """SELECT s.step, s.duration FROM runs r JOIN steps s ON s.run_id = r.run_id
            WHERE r.run_id IN (SELECT run_id FROM runs WHERE pipeline = ?
                               ORDER BY started_at DESC, run_id DESC LIMIT ?)
              AND s.status = ? AND s.duration IS NOT NULL
            ORDER BY r.started_at DESC""",
        (pipeline, runs, StepStatus.SUCCEEDED.value),
    )
    found: dict[str, list[float]] = {}
    for step, duration in rows:
        found.setdefault(step, []).append(float(duration))
    return found


def stored_fingerprints(conn: sqlite3.Connection, digests: Iterable[str]) -> dict[str, StoredFingerprint]:
    """The recorded fingerprints with these digests (digests never saved are left out)."""
    wanted = sorted({d for d in digests if d})
    found: dict[str, StoredFingerprint] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for digest, parts, scheme, key_id in conn.execute(
            f"SELECT digest, parts, scheme, key_id FROM fingerprints WHERE digest IN ({marks})", chunk
        ):
            found[digest] = StoredFingerprint(digest, loads(parts, {}), scheme, key_id)
    return found


def has_keyed_fingerprints(conn: sqlite3.Connection) -> bool:
    """Whether any fingerprint recorded was made with a key (scheme 2 and later)."""
    return conn.execute("SELECT 1 FROM fingerprints WHERE key_id != '' LIMIT 1").fetchone() is not None


def runs_to_prune(
    conn: sqlite3.Connection,
    *,
    keep: int | None = None,
    older_than: float | None = None,
    pipeline: str | None = None,
    now: float,
) -> tuple[RunRecord, ...]:
    """Finished runs beyond the ``keep`` most recent of each pipeline, or started before
    ``now - older_than``. Running runs are never candidates."""
    runs = list_runs(conn, pipeline, limit=None)
    seen: dict[str, int] = {}
    chosen = []
    for run in runs:  # newest first
        seen[run.pipeline] = seen.get(run.pipeline, 0) + 1
        if run.status == "running":
            continue
        too_many = keep is not None and seen[run.pipeline] > keep
        too_old = older_than is not None and run.started_at < now - older_than
        if too_many or too_old:
            chosen.append(run)
    return tuple(chosen)


def delete_runs(conn: sqlite3.Connection, run_ids: Sequence[str]) -> None:
    """Delete runs with their steps and attempts, and fingerprints no step refers to any more."""
    for start in range(0, len(run_ids), 500):
        chunk = tuple(run_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        for table in ("attempts", "steps", "runs"):
            conn.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", chunk)
    conn.execute(
        "DELETE FROM fingerprints WHERE digest NOT IN (SELECT fingerprint FROM steps)"
        " AND digest NOT IN (SELECT fingerprint FROM attempts)"
    )


def may_have_left_processes(conn: sqlite3.Connection, pipeline: str) -> bool:
    """Whether an earlier run of ``pipeline`` may have left processes behind: one is still
    recorded as running (read under the pipeline's lock: its runner died), or the latest one
    was interrupted. A run that ended otherwise killed everything of its own; and every run
    ends what earlier ones left before it starts, so older runs need no look."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM runs WHERE pipeline = ? AND status = 'running') OR coalesce(("
        "SELECT status FROM runs WHERE pipeline = ? ORDER BY started_at DESC, run_id DESC LIMIT 1"
        ") = 'interrupted', 0)",
        (pipeline, pipeline),
    ).fetchone()
    return bool(row[0])


def runners(conn: sqlite3.Connection, pipeline: str, run_ids: Iterable[str]) -> dict[str, tuple[str, int | None]]:
    """Of ``run_ids``, the runs of ``pipeline`` recorded here: run id → (host, pid) of its runner."""
    ids = sorted(set(run_ids))
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = conn.execute(
        f"SELECT run_id, host, pid FROM runs WHERE pipeline = ? AND run_id IN ({marks})", (pipeline, *ids)
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def resume_chain(conn: sqlite3.Connection, run_id: str) -> tuple[str, ...]:
    """``run_id`` and the runs it resumes (``resumed_from``, transitively), newest first."""
    chain: list[str] = []
    current: str | None = run_id
    while current and current not in chain:
        chain.append(current)
        row = conn.execute("SELECT resumed_from FROM runs WHERE run_id = ?", (current,)).fetchone()
        current = row[0] if row else None
    return tuple(chain)


def injected_faults(conn: sqlite3.Connection, run_ids: Sequence[str]) -> list[tuple[str, str, int, str]]:
    """The faults chaos injected in ``run_ids`` (issue 17): (run id, step, attempt, fault),
    oldest run first, in attempt order."""
    marks = ",".join("?" * len(run_ids))
    return [
        (r[0], r[1], r[2], r[3])
        for r in conn.execute(
            f"SELECT a.run_id, a.step, a.attempt, a.injected FROM attempts a JOIN runs r ON r.run_id = a.run_id "
            f"WHERE a.run_id IN ({marks}) AND a.injected != '' ORDER BY r.started_at, a.run_id, a.step, a.attempt",
            tuple(run_ids),
        )
    ]


__all__ = [
    "LATEST",
    "count_runs",
    "delete_runs",
    "find_run",
    "has_keyed_fingerprints",
    "has_run",
    "injected_faults",
    "is_latest",
    "last_successes",
    "latest_run",
    "list_runs",
    "may_have_left_processes",
    "resume_chain",
    "resumed_run",
    "run_detail",
    "runners",
    "runs_to_prune",
    "step_durations",
    "stored_fingerprints",
]
