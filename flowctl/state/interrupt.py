"""Recording a run as interrupted: its runner stopped on an error, or died (the next run, holding
the pipeline's lock, finds it still marked running). ``store.py`` calls it; one place says what
an interruption does to a run's attempts, items, steps and record."""

from __future__ import annotations

import sqlite3

from flowctl.run.events import ItemStatus, RunStatus, StepStatus


def interrupt_run(conn: sqlite3.Connection, run_id: str, reason: str, at: float | None) -> None:
    """Record run ``run_id`` as interrupted: its unfinished attempts, its running steps (with
    ``reason``) and the run itself, ending at ``at`` (None: its last attempt's time)."""
    conn.execute(
        "UPDATE attempts SET outcome = 'interrupted' WHERE run_id = ? AND finished_at IS NULL",
        (run_id,),
    )
    # An item a `dlq replay` was running goes back into the queue, to be replayed again.
    conn.execute("UPDATE items SET status = ? WHERE run_id = ? AND replays > 0 AND status IN (?, ?)",
                 (ItemStatus.DEAD.value, run_id, ItemStatus.RUNNING.value, ItemStatus.RETRYING.value))
    conn.execute("UPDATE items SET status = ? WHERE run_id = ? AND status = ?",
                 (ItemStatus.INTERRUPTED.value, run_id, ItemStatus.RUNNING.value))
    conn.execute(
        "UPDATE steps SET status = ?, reason = ? WHERE run_id = ? AND status = 'running'",
        (StepStatus.INTERRUPTED.value, reason, run_id),
    )
    conn.execute(
        "UPDATE runs SET status = ?, finished_at = coalesce(?, (SELECT max(coalesce(finished_at, started_at)) "
        "FROM attempts WHERE attempts.run_id = runs.run_id)) WHERE run_id = ? AND status = 'running'",
        (RunStatus.INTERRUPTED.value, at, run_id),
    )


__all__ = ["interrupt_run"]
