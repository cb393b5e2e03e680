"""Reading the items of ``foreach`` steps (issue 15): what a resume skips, the dead-letter queue.

``store.py`` writes item rows as the scheduler reports them (``ItemStarted``/``ItemFinished``);
this module holds every query of the ``items`` table, so ``cli`` and ``observe`` never write SQL.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flowctl.run.chaos import injected_only
from flowctl.run.events import ItemStatus

if TYPE_CHECKING:
    from flowctl.run.options import Carried
    from flowctl.state.views import StepLog

#: An item that needs no new attempt: it succeeded, or a resumed run had it succeeded.
DONE = (ItemStatus.SUCCEEDED.value, ItemStatus.REUSED.value)


def done_items(conn: sqlite3.Connection, run_id: str | None, pipeline: str,
               fingerprints: Mapping[str, str]) -> dict[str, dict[str, Carried]]:
    """Per foreach step in ``fingerprints`` (step → its fingerprint now): key → the record
    of each item that needs no new attempt: it succeeded (or was reused) under the same
    fingerprint, in run ``run_id`` (a resume) or, with None, in the latest run of ``pipeline``
    that recorded items of that step (a new run of a step that declares outputs)."""
    out: dict[str, dict[str, Carried]] = {}
    for step, digest in fingerprints.items():
        source = run_id
        if source is None:
            row = conn.execute(
                "SELECT items.run_id FROM items JOIN runs USING (run_id) WHERE runs.pipeline = ? AND items.step = ? "
                "ORDER BY runs.started_at DESC LIMIT 1", (pipeline, step)).fetchone()
            if row is None:
                continue
            source = str(row[0])
        found = {str(row[2]): _carried(row) for row in conn.execute(
            f"SELECT {_COLUMNS} FROM items WHERE run_id = ? AND step = ? AND definition = ? AND status IN (?, ?)",
            (source, step, digest, *DONE))}
        if found:
            out[step] = found
    return out


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
    injected: tuple[tuple[int, str], ...] = ()  # (attempt, fault) chaos injected in this run (issue 17)


_COLUMNS = ("run_id, step, key, item, status, attempts, exit_code, started_at, finished_at, duration, error, tail, "
            "log_path, first_failure, last_failure, replays, reason, batch, injected")


def _record(row: tuple[object, ...]) -> ItemRecord:
    (run_id, step, key, item, status, attempts, exit_code, started, finished, duration, error, tail, log_path,
     first, last, replays, reason, batch, injected) = row
    return ItemRecord(
        str(run_id), str(step), str(key), json.loads(str(item)), str(status), int(str(attempts)),
        None if exit_code is None else int(str(exit_code)), _float(started), _float(finished), _float(duration),
        None if error is None else str(error), tuple(json.loads(str(tail))), str(log_path), _float(first),
        _float(last), int(str(replays)), str(reason), int(str(batch)), parse_injected(str(injected)),
    )


def _carried(row: tuple[object, ...], replays: int | None = None) -> Carried:
    """An item's row as the runner carries it (``replays``: the count it will have now)."""
    from flowctl.run.options import Carried

    r = _record(row)
    return Carried(str(row[3]), r.status, r.replays if replays is None else replays, r.attempts, r.exit_code,
                   r.duration, r.error, r.tail, r.log_path, r.first_failure, r.last_failure, r.batch)


def match_key(given: str, keys: list[str]) -> str | None:
    """The key of ``keys`` that ``given`` names: itself, or a string item's key (its canonical
    JSON, quoted) typed without the quotes (``in/f3.csv`` for ``"in/f3.csv"``)."""
    if given in keys:
        return given
    quoted = json.dumps(given, ensure_ascii=False)
    return quoted if quoted in keys else None


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


#: Items a replay sends again besides the chosen ones: they never finished in the run.
_UNFINISHED = (ItemStatus.RUNNING.value, ItemStatus.RETRYING.value, ItemStatus.CANCELLED.value,
               ItemStatus.INTERRUPTED.value)
def parse_injected(text: str) -> tuple[tuple[int, str], ...]:
    """An item row's ``injected`` column ("1:fail,2:kill") as (attempt, fault) pairs."""
    out: list[tuple[int, str]] = []
    for part in text.split(","):
        attempt, sep, fault = part.partition(":")
        if sep and attempt.isdigit():
            out.append((int(attempt), fault))
    return tuple(out)


def item_faults(conn: sqlite3.Connection, run_ids: tuple[str, ...]) -> list[tuple[str, str, str, int, str]]:
    """The faults chaos injected into items of ``run_ids`` (issue 17): (run id, step, item key,
    attempt, fault); a batch's fault once, under its keys sorted and joined (``fanrun.unit_key``)."""
    marks = ",".join("?" * len(run_ids))
    units: dict[tuple[str, str, int, int, str], list[str]] = {}
    for run_id, step, key, batch, injected in conn.execute(
            f"SELECT run_id, step, key, batch, injected FROM items WHERE run_id IN ({marks}) AND injected != '' "
            "ORDER BY run_id, step, key", run_ids):
        for attempt, fault in parse_injected(str(injected)):
            # a single item is its own unit; the items of one batch attempt share one fault
            unit = (str(run_id), str(step), int(batch) or -len(units) - 1, attempt, fault)
            units.setdefault(unit, []).append(str(key))
    return [(run, step, ",".join(sorted(keys)), attempt, fault) for (run, step, _, attempt, fault), keys in units.items()]


def replay_plan(conn: sqlite3.Connection, run_id: str, step: str,
                keys: tuple[str, ...]) -> tuple[dict[str, Carried], dict[str, Carried]]:
    """For ``dlq replay`` of ``keys`` of ``step`` in run ``run_id`` itself: the items kept as
    they are (every finished one not chosen), and those sent again (the chosen ones, each with
    the replay count it will have, and those that never finished, as a resume would)."""
    kept: dict[str, Carried] = {}
    sent: dict[str, Carried] = {}
    chosen = set(keys)
    for row in conn.execute(f"SELECT {_COLUMNS} FROM items WHERE run_id = ? AND step = ?", (run_id, step)):
        key, status, replays = str(row[2]), str(row[4]), int(str(row[15]))
        if key in chosen:
            sent[key] = _carried(row, replays + 1)
        elif status in _UNFINISHED:
            sent[key] = _carried(row)
        else:
            kept[key] = _carried(row)
    return kept, sent


def attempts_made(conn: sqlite3.Connection, run_id: str) -> dict[str, int]:
    """Per step of ``run_id``: the attempts it recorded (a foreach step's: units started)."""
    return {str(step): int(count) for step, count in conn.execute(
        "SELECT step, attempts FROM steps WHERE run_id = ? AND attempts > 0", (run_id,))}


def latest_results(conn: sqlite3.Connection, runs_dir: str, pipeline: str, steps: list[str],
                   name: str = "results.jsonl") -> dict[str, str]:
    """For each of ``steps`` (steps a run reuses), its file ``name`` (a foreach step's
    ``results.jsonl``, a producer's ``stdout.jsonl``) in the latest run of ``pipeline`` in which
    it succeeded."""
    out: dict[str, str] = {}
    for step in steps:
        row = conn.execute(
            "SELECT steps.run_id FROM steps JOIN runs USING (run_id) WHERE runs.pipeline = ? AND steps.step = ? "
            "AND steps.status = 'succeeded' ORDER BY runs.started_at DESC LIMIT 1", (pipeline, step)).fetchone()
        if row is not None:
            out[step] = os.path.join(runs_dir, str(row[0]), step, name)
    return out


@dataclass(frozen=True, slots=True)
class ItemsSummary:
    """What ``show`` says about one foreach step's items: counts per status, the slowest, the
    failed, and the rates (items per second over the step's span, error rate, p50/p95/p99).
    The error rate leaves out items dead-lettered only through injected faults (issue 17)."""

    step: str
    counts: Mapping[str, int]
    slowest: tuple[ItemRecord, ...]
    failed: tuple[ItemRecord, ...]
    items_per_second: float | None
    error_rate: float
    p50: float | None
    p95: float | None
    p99: float | None


def summarize(records: list[ItemRecord], *, most: int = 5) -> list[ItemsSummary]:
    """One summary per step of ``records`` (in the order the steps first appear)."""
    by_step: dict[str, list[ItemRecord]] = {}
    for r in records:
        by_step.setdefault(r.step, []).append(r)
    out: list[ItemsSummary] = []
    for step, items in by_step.items():
        counts: dict[str, int] = {}
        for r in items:
            counts[r.status] = counts.get(r.status, 0) + 1
        ran = [r for r in items if r.duration is not None and r.status != ItemStatus.REUSED.value]
        durations = sorted(r.duration for r in ran if r.duration is not None)
        starts = [r.started_at for r in ran if r.started_at is not None]
        ends = [r.finished_at for r in ran if r.finished_at is not None]
        span = (max(ends) - min(starts)) if starts and ends else 0.0
        failed = [r for r in items if r.status in (ItemStatus.DEAD.value, ItemStatus.POISONED.value)]
        real = [r for r in failed if not injected_only(r.attempts, r.injected)]  # issue 17: chaos is no error
        ended = len(ran)
        out.append(ItemsSummary(
            step, counts, tuple(sorted(ran, key=lambda r: -(r.duration or 0.0))[:most]), tuple(failed[:most]),
            ended / span if span > 0 else None, len(real) / ended if ended else 0.0,
            _quantile(durations, 0.50), _quantile(durations, 0.95), _quantile(durations, 0.99),
        ))
    return out


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]


def status_counts(conn: sqlite3.Connection, run_id: str) -> dict[str, Mapping[str, int]]:
    """Per foreach step of ``run_id``: how many items have each status."""
    out: dict[str, dict[str, int]] = {}
    for step, status, count in conn.execute(
        "SELECT step, status, count(*) FROM items WHERE run_id = ? GROUP BY step, status", (run_id,)
    ):
        out.setdefault(str(step), {})[str(status)] = int(count)
    return dict(out)


__all__ = ["DONE", "ItemRecord", "ItemsSummary", "attempts_made", "done_items", "item_faults", "item_log", "items_of",
           "latest_results", "parse_injected", "replay_plan", "status_counts", "summarize"]


def item_log(state_dir: str | os.PathLike[str], run_id: str, step: str, key: str, attempt: int | None = None) -> StepLog:
    """The log of item ``key`` of foreach step ``step`` (its attempt ``attempt``, default the
    last; a batched item's is its batch's). Raises UsageError for an unknown step, key or attempt."""
    from flowctl.errors import UsageError
    from flowctl.spec.schema import suggest
    from flowctl.state.views import StepLog, opened

    with opened(state_dir) as conn:
        found = items_of(conn, run_id, step)
    if not found:
        raise UsageError(f"run {run_id} has no items of step {step!r}", hint="--item takes the key of an item of a foreach step")
    named = match_key(key, [r.key for r in found])
    record = next((r for r in found if r.key == named), None)
    if record is None:
        guess = suggest(key, [r.key for r in found])
        raise UsageError(f"step {step!r} of run {run_id} has no item with key {key!r}",
                         hint=f"did you mean {guess!r}?" if guess else "`flowctl show` lists the failed items' keys")
    number = attempt or record.attempts
    if not record.log_path or not 1 <= number <= max(1, record.attempts):
        raise UsageError(f"item {key!r} has no attempt {number}", hint=f"it made {record.attempts} attempt(s)")
    path = Path(record.log_path).with_name(f"{number}.log")
    return StepLog(run_id, step, number, path, path.is_file())
