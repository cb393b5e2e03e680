"""The dead-letter queue (issue 15): items of foreach steps that failed their last attempt.

An item is in the queue while its row in ``items`` is ``dead-lettered`` (or ``poisoned``: it
was replayed too often). ``drop`` takes one out for good, keeping the row (status ``dropped``,
with the reason) for audit. Values and log tails were masked before they were stored.
"""

from __future__ import annotations

import os
import time

from flowctl.errors import UsageError
from flowctl.run.events import ItemStatus
from flowctl.state.items import ItemRecord, items_of, match_key
from flowctl.state.views import opened

#: The statuses of an item in the dead-letter queue.
QUEUED = (ItemStatus.DEAD.value, ItemStatus.POISONED.value)


#: A replayed item stays in the queue while its replay runs: a replay killed with ``-9`` (its
#: rows still say running until the next run takes the lock) never empties the queue.
_REPLAYING = (ItemStatus.RUNNING.value, ItemStatus.RETRYING.value)


def dead_letters(state_dir: str | os.PathLike[str], run_id: str, step: str | None = None) -> list[ItemRecord]:
    """The queue of run ``run_id`` (of one step), by step and time."""
    with opened(state_dir) as conn:
        found = items_of(conn, run_id, step, statuses=QUEUED + _REPLAYING)
    return [r for r in found if r.status in QUEUED or r.replays > 0]


def dead_letter(state_dir: str | os.PathLike[str], run_id: str, key: str, step: str | None = None) -> ItemRecord:
    """One item of the queue. Raises UsageError when it is not there (or the key is in two steps)."""
    queue = dead_letters(state_dir, run_id, step)
    named = match_key(key, [r.key for r in queue])
    found = [r for r in queue if r.key == named]
    if not found:
        from flowctl.spec.schema import suggest

        keys = [r.key for r in queue]
        guess = suggest(key, keys)
        raise UsageError(f"no item with key {key!r} in the dead-letter queue of run {run_id}",
                         hint=f"did you mean {guess!r}?" if guess else
                         ("it is empty" if not keys else "`flowctl dlq list` shows its keys"))
    if len(found) > 1:
        raise UsageError(f"key {key!r} is dead-lettered in steps {', '.join(r.step for r in found)}",
                         hint="say which with --step")
    return found[0]


def drop(state_dir: str | os.PathLike[str], record: ItemRecord, reason: str) -> None:
    """Take ``record`` out of the queue: status ``dropped``, the reason and time kept."""
    with opened(state_dir, write=True) as conn, conn:
        conn.execute("UPDATE items SET status = ?, reason = ?, finished_at = coalesce(finished_at, ?) "
                     "WHERE run_id = ? AND step = ? AND key = ?",
                     (ItemStatus.DROPPED.value, f"dropped at {time.time():.0f}: {reason}", time.time(),
                      record.run_id, record.step, record.key))


def poison(state_dir: str | os.PathLike[str], records: list[ItemRecord], max_replays: int) -> None:
    """Mark ``records`` poisoned: replayed ``max_replays`` times, refused without --force."""
    with opened(state_dir, write=True) as conn, conn:
        conn.executemany("UPDATE items SET status = ?, reason = ? WHERE run_id = ? AND step = ? AND key = ?",
                         [(ItemStatus.POISONED.value, f"replayed {r.replays} times (--max-replays {max_replays})",
                           r.run_id, r.step, r.key) for r in records])


__all__ = ["QUEUED", "dead_letter", "dead_letters", "drop", "poison"]
