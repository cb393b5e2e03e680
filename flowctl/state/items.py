"""Reading the items of ``foreach`` steps (issue 15): what a resume skips, the dead-letter queue.

``store.py`` writes item rows as the scheduler reports them (``ItemStarted``/``ItemFinished``);
this module holds every query of the ``items`` table, so ``cli`` and ``observe`` never write SQL.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from flowctl.run.events import ItemStatus

#: An item that needs no new attempt: it succeeded, or a resumed run had it succeeded.
DONE = (ItemStatus.SUCCEEDED.value, ItemStatus.REUSED.value)


def done_keys(conn: sqlite3.Connection, run_id: str) -> dict[str, frozenset[str]]:
    """Per foreach step of ``run_id``, the keys of its items that need no new attempt."""
    out: dict[str, set[str]] = {}
    for step, key in conn.execute(
        "SELECT step, key FROM items WHERE run_id = ? AND status IN (?, ?)", (run_id, *DONE)
    ):
        out.setdefault(step, set()).add(key)
    return {step: frozenset(keys) for step, keys in out.items()}


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One item's row: where it is, how its last attempt went."""

    run_id: str
    step: str
    key: str
    item: object
    status: str
    attempts: int
    exit_code: int | None
    started_at: float | None
    finished_at: float | None
    duration: float | None
    error: str | None
    tail: tuple[str, ...]
    log_path: str
    first_failure: float | None
    last_failure: float | None
    replays: int
    reason: str
    batch: int = 0


_COLUMNS = ("run_id, step, key, item, status, attempts, exit_code, started_at, finished_at, duration, error, tail, "
            "log_path, first_failure, last_failure, replays, reason, batch")


def _record(row: tuple[object, ...]) -> ItemRecord:
    (run_id, step, key, item, status, attempts, exit_code, started, finished, duration, error, tail, log_path,
     first, last, replays, reason, batch) = row
    return ItemRecord(
        str(run_id), str(step), str(key), json.loads(str(item)), str(status), int(str(attempts)),
        None if exit_code is None else int(str(exit_code)), _float(started), _float(finished), _float(duration),
        None if error is None else str(error), tuple(json.loads(str(tail))), str(log_path), _float(first),
        _float(last), int(str(replays)), str(reason), int(str(batch)),
    )


def _float(value: object) -> float | None:
    return None if value is None else float(str(value))


def items_of(conn: sqlite3.Connection, run_id: str, step: str | None = None, *,
             statuses: tuple[str, ...] = ()) -> list[ItemRecord]:
    """The items of ``run_id`` (of one step; of these statuses), by step and start."""
    sql = f"SELECT {_COLUMNS} FROM items WHERE run_id = ?"
    args: list[object] = [run_id]
    if step is not None:
        sql += " AND step = ?"
        args.append(step)
    if statuses:
        sql += f" AND status IN ({', '.join('?' * len(statuses))})"
        args.extend(statuses)
    return [_record(row) for row in conn.execute(sql + " ORDER BY step, started_at, key", args)]


def latest_results(conn: sqlite3.Connection, runs_dir: str, pipeline: str, steps: list[str]) -> dict[str, str]:
    """For each of ``steps`` (foreach steps a run reuses), the ``results.jsonl`` of the latest
    run of ``pipeline`` in which it succeeded."""
    import os

    out: dict[str, str] = {}
    for step in steps:
        row = conn.execute(
            "SELECT steps.run_id FROM steps JOIN runs USING (run_id) WHERE runs.pipeline = ? AND steps.step = ? "
            "AND steps.status = 'succeeded' ORDER BY runs.started_at DESC LIMIT 1", (pipeline, step)).fetchone()
        if row is not None:
            out[step] = os.path.join(runs_dir, str(row[0]), step, "results.jsonl")
    return out


def status_counts(conn: sqlite3.Connection, run_id: str) -> dict[str, Mapping[str, int]]:
    """Per foreach step of ``run_id``: how many items have each status."""
    out: dict[str, dict[str, int]] = {}
    for step, status, count in conn.execute(
        "SELECT step, status, count(*) FROM items WHERE run_id = ? GROUP BY step, status", (run_id,)
    ):
        out.setdefault(str(step), {})[str(status)] = int(count)
    return dict(out)


__all__ = ["DONE", "ItemRecord", "done_keys", "items_of", "latest_results", "status_counts"]
