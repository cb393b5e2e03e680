"""The SQLite run store: events become rows, commits survive, history reads them back."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from flowctl.errors import StateError
from flowctl.run.events import RunFinished, RunId, RunStatus
from flowctl.state import db, queries
from flowctl.state.store import SqliteRunStore
from tests.conftest import REPO
from tests.state.helpers import run_events


def record_all(state_dir, events):
    with SqliteRunStore(state_dir) as store:
        for event in events:
            store.record(event)


def test_a_recorded_run_reads_back_step_by_step(tmp_path):
    record_all(tmp_path, run_events("r1", ["a", "b", "c"], fail={"b": 1}, fingerprints={"a": "fa"}))
    conn = db.connect(tmp_path)
    detail = queries.run_detail(conn, "r1")
    assert detail.run.status == "succeeded"
    assert detail.run.params == {"day": "mon"}
    assert detail.run.steps == ("a", "b", "c")
    assert detail.run.counts == {"succeeded": 3}
    assert [s.step for s in detail.steps] == ["a", "b", "c"]
    a, b, _ = detail.steps
    assert (a.ready_at, a.started_at, a.finished_at) == (1000.0, 1000.5, 1001.5)
    assert a.fingerprint == "fa" and a.attempts == 1
    assert [(x.attempt, x.outcome, x.exit_code) for x in b.attempt_records] == [(1, "failed", 3), (2, "ok", 0)]
    assert b.attempt_records[0].retry_delay == 0.25
    assert b.attempt_records[0].log_path == "/logs/b/1.log"
    assert b.attempt_records[0].host  # the recording host
    assert b.attempts == 2


def test_a_resumed_run_reads_how_each_step_ended_as_the_full_detail_does(tmp_path):
    """``resumed_run`` (what deciding a resume reads) agrees with ``run_detail`` on every step."""
    record_all(tmp_path, run_events("r1", ["a", "b", "c"], fail={"b": 1}, fingerprints={"a": "fa"}))
    conn = db.connect(tmp_path)
    detail, resumed = queries.run_detail(conn, "r1"), queries.resumed_run(conn, "r1")
    assert resumed.run == detail.run
    assert {sid: (o.run_id, o.status, o.fingerprint, dict(o.outputs), o.succeeded) for sid, o in resumed.outcomes.items()} == {
        s.step: (s.run_id, s.status, s.fingerprint, dict(s.outputs), s.succeeded) for s in detail.steps
    }
    assert resumed.step("a") is resumed.outcomes["a"] and resumed.step("nope") is None


def test_schema_version_is_set_and_reopening_keeps_data(tmp_path):
    record_all(tmp_path, run_events("r1", ["a"]))
    conn = db.connect(tmp_path)
    assert db.schema_version(conn) == db.SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    conn = db.connect(tmp_path)
    assert [r.run_id for r in queries.list_runs(conn)] == ["r1"]


def test_step_events_are_buffered_until_a_checkpoint(tmp_path):
    events = run_events("r1", ["a", "b"], finish=False)
    store = SqliteRunStore(tmp_path, max_delay=3600)
    reader = db.connect(tmp_path)
    store.record(events[0])  # RunStarted waits for the flush of its turn
    assert reader.execute("SELECT count(*) FROM steps").fetchone()[0] == 0
    store.flush()
    assert reader.execute("SELECT count(*) FROM steps").fetchone()[0] == 2
    store.record(events[1])  # StepReady a: buffered
    store.record(events[2])  # AttemptStarted a: buffered
    assert reader.execute("SELECT status FROM steps WHERE step='a'").fetchone()[0] == "pending"
    store.flush()
    assert reader.execute("SELECT status FROM steps WHERE step='a'").fetchone()[0] == "running"
    store.record(events[3])  # AttemptFinished: buffered
    store.record(events[4])  # StepFinished: buffered until the scheduler's flush
    assert reader.execute("SELECT status FROM steps WHERE step='a'").fetchone()[0] == "running"
    store.flush()
    assert reader.execute("SELECT status FROM steps WHERE step='a'").fetchone()[0] == "succeeded"
    assert reader.execute("SELECT outcome FROM attempts WHERE step='a'").fetchone()[0] == "ok"
    store.close()


def test_old_buffered_rows_are_committed_by_the_next_event(tmp_path):
    events = run_events("r1", ["a"], finish=False)
    store = SqliteRunStore(tmp_path, max_delay=0.0)
    reader = db.connect(tmp_path)
    store.record(events[0])
    store.flush()
    store.record(events[1])
    assert reader.execute("SELECT status FROM steps WHERE step='a'").fetchone()[0] == "ready"
    store.close()


def test_a_run_and_its_first_turn_land_in_one_transaction(tmp_path):
    """Issue 12: a resume's run record never exists without the reuse decisions of its first
    turn, even when recording them takes longer than the store's max_delay."""
    from flowctl.run.events import StepFinished, StepStatus

    store = SqliteRunStore(tmp_path, max_delay=0.0)  # every other row would commit at once
    reader = db.connect(tmp_path)
    store.record(run_events("r1", ["a", "b", "c"], finish=False)[0])
    for step in ("a", "b"):
        store.record(StepFinished(RunId("r1"), step, StepStatus.REUSED, 1000.0, reason="reused"))
    assert reader.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    store.flush()
    assert reader.execute("SELECT step, status FROM steps ORDER BY step").fetchall() == [
        ("a", "reused"), ("b", "reused"), ("c", "pending")
    ]
    store.close()


def test_a_killed_recorder_keeps_every_committed_step(tmp_path):
    """kill -9 the recording process: what it committed is there, nothing else is invented."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from flowctl.state.store import SqliteRunStore
        from tests.state.helpers import run_events
        store = SqliteRunStore({str(tmp_path)!r}, max_delay=3600)
        for event in run_events("r1", ["a", "b", "c"], stop_after=3):
            store.record(event)
            store.flush()  # as the scheduler does after each turn
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO)
    assert proc.returncode == -9
    conn = db.connect(tmp_path)
    detail = queries.run_detail(conn, "r1")
    assert detail.run.status == "running"
    statuses = {s.step: s.status for s in detail.steps}
    assert statuses["a"] == statuses["b"] == "succeeded"
    assert statuses["c"] == "running"  # its start was flushed; it never finished


def test_mark_interrupted_never_turns_running_into_success(tmp_path):
    store = SqliteRunStore(tmp_path)
    for event in run_events("r1", ["a", "b"], stop_after=2):
        store.record(event)
    store.flush()
    assert store.mark_interrupted("etl") == ("r1",)
    store.close()
    detail = queries.run_detail(db.connect(tmp_path), "r1")
    assert detail.run.status == "interrupted"
    b = detail.step("b")
    assert b is not None and b.status == "interrupted"
    assert b.attempt_records[0].outcome == "interrupted"
    assert detail.step("a").status == "succeeded"


def test_last_successes_take_the_newest_success_per_step(tmp_path):
    record_all(tmp_path, run_events("r1", ["a", "b"], fingerprints={"a": "a1", "b": "b1"},
                                    outputs={"a": {"out.txt": "h1"}}))
    record_all(tmp_path, run_events("r2", ["a", "b"], start=2000, fail={"b": 99},
                                    fingerprints={"a": "a2", "b": "b2"}))
    found = queries.last_successes(db.connect(tmp_path), "etl")
    assert (found["a"].run_id, found["a"].fingerprint) == ("r2", "a2")
    assert (found["b"].run_id, found["b"].fingerprint) == ("r1", "b1")
    assert found["b"].outputs == {}
    assert queries.last_successes(db.connect(tmp_path), "other") == {}


def test_fingerprints_are_kept_by_digest_with_their_scheme_and_key(tmp_path):
    from flowctl.fingerprint import SCHEME, Fingerprint
    from flowctl.state.run_records import StoredFingerprint

    with SqliteRunStore(tmp_path) as store:
        store.save_fingerprints([Fingerprint("a", "d1", {"command": "x", "env:A": "y"}, key_id="k1")])
        store.save_fingerprints([Fingerprint("a", "d1", {"command": "changed?"})])  # a digest's parts never change
    found = queries.stored_fingerprints(db.connect(tmp_path), ["d1", "nope"])
    assert found == {"d1": StoredFingerprint("d1", {"command": "x", "env:A": "y"}, SCHEME, "k1")}
    assert queries.has_keyed_fingerprints(db.connect(tmp_path))


def test_fingerprints_from_before_the_scheme_column_are_scheme_1_and_lose_their_unkeyed_parts(tmp_path, monkeypatch):
    """Issue 12: the additive migration marks old rows scheme 1 (never compared with current
    ones) and empties their parts, which hashed secret values without a key."""
    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS[:1])
    monkeypatch.setattr(db, "SCHEMA_VERSION", 1)
    conn = db.connect(tmp_path)
    conn.execute("INSERT INTO fingerprints (digest, parts) VALUES ('old', '{\"env:TOKEN\": \"abc\"}')")
    conn.close()
    monkeypatch.undo()
    conn = db.connect(tmp_path)
    assert db.schema_version(conn) == db.SCHEMA_VERSION
    assert conn.execute("SELECT digest, parts, scheme, key_id FROM fingerprints").fetchall() == [("old", "{}", 1, "")]
    assert not queries.has_keyed_fingerprints(conn)


def test_find_run_accepts_a_unique_prefix(tmp_path):
    record_all(tmp_path, run_events("20261125T0200-aaaa", ["a"]))
    record_all(tmp_path, run_events("20261125T0300-bbbb", ["a"], start=2000))
    conn = db.connect(tmp_path)
    assert queries.find_run(conn, "20261125T03").run_id == "20261125T0300-bbbb"
    from flowctl.errors import UsageError

    with pytest.raises(UsageError, match="ambiguous"):
        queries.find_run(conn, "20261125")
    with pytest.raises(UsageError, match="no run"):
        queries.find_run(conn, "zzz")


def test_garbage_database_is_a_state_error_with_a_way_out(tmp_path):
    db.db_path(tmp_path).write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StateError) as info:
        SqliteRunStore(tmp_path)
    assert "corrupt" in info.value.message or "not a" in info.value.message
    assert "doctor" in (info.value.hint or "")


def test_a_newer_schema_is_refused_not_overwritten(tmp_path):
    conn = db.connect(tmp_path)
    conn.execute(f"PRAGMA user_version = {db.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StateError, match="newer flowctl"):
        db.connect(tmp_path)


def test_a_foreign_sqlite_file_is_refused(tmp_path):
    conn = sqlite3.connect(db.db_path(tmp_path))
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="not a flowctl state database"):
        db.connect(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_database_is_a_state_error(tmp_path):
    record_all(tmp_path, run_events("r1", ["a"]))
    db.db_path(tmp_path).chmod(0)
    try:
        with pytest.raises(StateError, match=r"permission|cannot"):
            db.connect(tmp_path)
    finally:
        db.db_path(tmp_path).chmod(0o644)


def test_a_missing_database_is_not_created_by_readers(tmp_path):
    with pytest.raises(StateError, match="no flowctl state"):
        db.connect(tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()


def test_migrations_run_forward_from_an_older_schema(tmp_path, monkeypatch):
    """A database at version 1 is brought to a (hypothetical) version 2 additively."""
    record_all(tmp_path, run_events("r1", ["a"]))
    extended = (*db.MIGRATIONS, ("ALTER TABLE runs ADD COLUMN trigger TEXT",))
    monkeypatch.setattr(db, "MIGRATIONS", extended)
    monkeypatch.setattr(db, "SCHEMA_VERSION", len(extended))
    conn = db.connect(tmp_path)
    assert db.schema_version(conn) == len(extended)
    assert conn.execute("SELECT run_id, trigger FROM runs").fetchall() == [("r1", None)]


def test_run_finished_records_the_outcome(tmp_path):
    events = run_events("r1", ["a"], finish=False)
    events.append(RunFinished(RunId("r1"), 1010.0, RunStatus.CANCELLED, duration=10.0,
                              counts={"cancelled": 1}, root_failure="a"))
    record_all(tmp_path, events)
    run = queries.find_run(db.connect(tmp_path), "r1")
    assert (run.status, run.duration, run.root_failure, run.finished_at) == ("cancelled", 10.0, "a", 1010.0)


def test_a_database_path_that_cannot_be_opened_is_a_state_error(tmp_path):
    db.db_path(tmp_path).mkdir()  # a folder where the file should be
    with pytest.raises(StateError) as info:
        SqliteRunStore(tmp_path)
    assert str(db.db_path(tmp_path)) in info.value.message


def test_ready_and_started_in_one_turn_give_the_same_step_row_as_in_two(tmp_path):
    """A step made ready and started in one turn is written once (READY folded into RUNNING)."""
    from flowctl.run.events import AttemptStarted, RunStarted, StepReady

    rows = []
    for name, flush_between in (("one-turn", False), ("two-turns", True)):
        folder = tmp_path / name
        with SqliteRunStore(folder) as store:
            store.record(RunStarted(RunId("r1"), "p", 1000.0, ("a",)))
            store.record(StepReady(RunId("r1"), "a", 1000.25, queue_depth=3))
            if flush_between:
                store.flush()
            store.record(AttemptStarted(RunId("r1"), "a", 1, 1000.5, fingerprint="fp"))
            store.flush()
        conn = db.connect(folder)
        rows.append(conn.execute(
            "SELECT status, ready_at, queue_depth, started_at, attempts, fingerprint FROM steps"
        ).fetchall())
        conn.close()
    assert rows[0] == rows[1] == [("running", 1000.25, 3, 1000.5, 1, "fp")]


def test_a_schema_3_database_gains_the_item_faults_column_and_keeps_its_items(tmp_path, monkeypatch):
    """Issue 17 (items are attempts too): schema 4 adds ``items.injected``; items recorded by a
    schema-3 flowctl read back with no fault, and a resume's spent faults can be read at once."""
    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS[:3])
    monkeypatch.setattr(db, "SCHEMA_VERSION", 3)
    record_all(tmp_path, run_events("r1", ["a"]))
    conn = db.connect(tmp_path)
    conn.execute("INSERT INTO items (run_id, step, key, status, attempts) VALUES ('r1', 'a', '\"k\"', 'dead-lettered', 2)")
    conn.commit()
    conn.close()
    monkeypatch.undo()
    conn = db.connect(tmp_path)
    assert db.schema_version(conn) == db.SCHEMA_VERSION == 4
    from flowctl.state.items import item_faults, items_of

    [item] = items_of(conn, "r1")
    assert (item.key, item.status, item.attempts, item.injected) == ('"k"', "dead-lettered", 2, ())
    assert item_faults(conn, ("r1",)) == []
    conn.execute("UPDATE items SET injected = '1:fail,2:kill'")
    assert item_faults(conn, ("r1",)) == [("r1", "a", '"k"', 1, "fail"), ("r1", "a", '"k"', 2, "kill")]
