"""flowctl runs / show / logs / gc / doctor against real state folders, as real processes."""

from __future__ import annotations

import json
import sqlite3
import time

from flowctl.state import db
from flowctl.state.store import SqliteRunStore
from tests.conftest import run_flowctl
from tests.state.helpers import run_events


def record(state_dir, run_id, steps, *, start, pipeline="etl", logs=True, **kw):
    events = run_events(run_id, steps, start=start, pipeline=pipeline, **kw)
    if logs:
        events = [_with_log(e, state_dir) for e in events]
    with SqliteRunStore(state_dir) as store:
        for event in events:
            store.record(event)


def _with_log(event, state_dir):
    import dataclasses

    if hasattr(event, "log_path") and event.log_path:
        path = state_dir / "runs" / event.run_id / event.step / f"{event.attempt}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{event.step} attempt {event.attempt} says hi\n")
        return dataclasses.replace(event, log_path=str(path))
    return event


def test_runs_lists_newest_first_as_text_and_json(tmp_path):
    state = tmp_path / ".flowctl"
    record(state, "r1", ["a", "b"], start=time.time() - 100)
    record(state, "r2", ["a", "b"], start=time.time() - 50, fail={"b": 99})
    record(state, "r3", ["x"], start=time.time() - 10, pipeline="other")
    got = run_flowctl("runs", "--state-dir", str(state))
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0].split()[:3] == ["RUN", "PIPELINE", "STARTED"]
    assert [line.split()[0] for line in lines[1:]] == ["r3", "r2", "r1"]
    assert "1 succeeded, 1 failed" in lines[2]
    data = json.loads(run_flowctl("runs", "etl", "--json", "--state-dir", str(state)).stdout)
    assert [r["run_id"] for r in data] == ["r2", "r1"]
    assert data[0]["status"] == "failed" and data[0]["counts"] == {"succeeded": 1, "failed": 1}
    assert data[1]["params"] == {"day": "mon"}


def test_runs_shows_a_dead_running_run_as_interrupted(tmp_path):
    state = tmp_path / ".flowctl"
    record(state, "r1", ["a", "b"], start=time.time(), stop_after=2)
    data = json.loads(run_flowctl("runs", "--json", "--state-dir", str(state)).stdout)
    assert data[0]["status"] == "interrupted"
    shown = json.loads(run_flowctl("show", "r1", "--json", "--state-dir", str(state)).stdout)
    assert {s["step"]: s["status"] for s in shown["steps"]} == {"a": "succeeded", "b": "interrupted"}
    # the header counts what the table shows, not what the dead runner last saved (trial of main)
    assert shown["run"]["counts"] == {"succeeded": 1, "interrupted": 1}
    text = run_flowctl("show", "r1", "--state-dir", str(state)).stdout
    assert "steps: 1 interrupted, 1 succeeded" in text or "steps: 1 succeeded, 1 interrupted" in text, text


def test_runs_with_no_state_says_so(tmp_path):
    got = run_flowctl("runs", cwd=tmp_path)
    assert got.returncode == 0 and got.stdout.strip() == "no runs recorded in .flowctl"
    assert not (tmp_path / ".flowctl").exists()


def test_show_a_run_step_by_step(tmp_path):
    state = tmp_path / ".flowctl"
    record(state, "20261125T020000-3fa1", ["extract", "load"], start=time.time(), fail={"load": 1})
    got = run_flowctl("show", "20261125T02", "--state-dir", str(state))
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("Run 20261125T020000-3fa1 of etl")
    load = next(line for line in got.stdout.splitlines() if line.startswith("load"))
    assert "succeeded" in load and " 2 " in load and "3,0" in load and "load/2.log" in load
    data = json.loads(run_flowctl("show", "20261125T020000-3fa1", "-f", "json", "--state-dir", str(state)).stdout)
    attempts = data["steps"][1]["attempt_records"]
    assert [(a["attempt"], a["outcome"], a["exit_code"]) for a in attempts] == [(1, "failed", 3), (2, "ok", 0)]
    assert data["steps"][0]["ready_at"] is not None and data["steps"][0]["started_at"] is not None


def test_show_an_unknown_run_is_a_usage_error(tmp_path):
    state = tmp_path / ".flowctl"
    record(state, "r1", ["a"], start=time.time())
    got = run_flowctl("show", "nope", "--state-dir", str(state))
    assert got.returncode == 2
    assert "no run with id 'nope'" in got.stderr and "Traceback" not in got.stderr


def test_logs_prints_the_last_or_a_chosen_attempt(tmp_path):
    state = tmp_path / ".flowctl"
    record(state, "r1", ["a", "b"], start=time.time(), fail={"b": 1})
    assert run_flowctl("logs", "r1", "b", "--state-dir", str(state)).stdout == "b attempt 2 says hi\n"
    assert run_flowctl("logs", "r1", "b", "--attempt", "1", "--state-dir", str(state)).stdout == "b attempt 1 says hi\n"
    data = json.loads(run_flowctl("logs", "r1", "a", "--json", "--state-dir", str(state)).stdout)
    assert data["text"] == "a attempt 1 says hi\n" and data["path"].endswith("a/1.log")
    bad = run_flowctl("logs", "r1", "bb", "--state-dir", str(state))
    assert bad.returncode == 2 and "did you mean 'b'" in bad.stderr
    bad = run_flowctl("logs", "r1", "b", "--attempt", "7", "--state-dir", str(state))
    assert bad.returncode == 2 and "has no attempt 7 (it has 1, 2)" in bad.stderr


def test_gc_keeps_the_newest_runs_and_removes_logs(tmp_path):
    state = tmp_path / ".flowctl"
    now = time.time()
    for i in range(4):
        record(state, f"r{i}", ["a"], start=now - 100 + i)
    record(state, "o1", ["a"], start=now - 100, pipeline="other")
    dry = run_flowctl("gc", "--keep", "2", "--dry-run", "--state-dir", str(state))
    assert dry.returncode == 0 and "would prune 2 run(s)" in dry.stdout
    assert (state / "runs" / "r0").is_dir()
    got = json.loads(run_flowctl("gc", "--keep", "2", "--json", "--state-dir", str(state)).stdout)
    assert sorted(got["runs"]) == ["r0", "r1"]
    assert not (state / "runs" / "r0").exists() and (state / "runs" / "r2").is_dir()
    remaining = json.loads(run_flowctl("runs", "--json", "--state-dir", str(state)).stdout)
    assert sorted(r["run_id"] for r in remaining) == ["o1", "r2", "r3"]


def test_gc_older_than(tmp_path):
    state = tmp_path / ".flowctl"
    now = time.time()
    record(state, "old", ["a"], start=now - 40 * 86400)
    record(state, "new", ["a"], start=now - 60)
    got = run_flowctl("gc", "--older-than", "30d", "--state-dir", str(state))
    assert got.returncode == 0 and "pruned old" in got.stdout
    bad = run_flowctl("gc", "--older-than", "soon", "--state-dir", str(state))
    assert bad.returncode == 2 and "not a duration" in bad.stderr
    nothing = run_flowctl("gc", "--state-dir", str(state))
    assert nothing.returncode == 2 and "--keep N and/or --older-than" in nothing.stderr


def test_a_garbage_database_gives_a_clear_error_and_doctor_repairs_it(tmp_path):
    state = tmp_path / ".flowctl"
    state.mkdir()
    db.db_path(state).write_bytes(b"\x00garbage" * 4096)
    got = run_flowctl("runs", "--state-dir", str(state))
    assert got.returncode == 74
    assert "corrupt" in got.stderr and f"flowctl doctor --state-dir {state}" in got.stderr and "Traceback" not in got.stderr
    check = run_flowctl("doctor", "--state-dir", str(state))
    assert check.returncode == 1 and "not a SQLite database" in check.stdout
    fixed = run_flowctl("doctor", "--repair", "--state-dir", str(state))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "moved the damaged database" in fixed.stdout
    assert list(state.glob("state.db.bad-*"))
    assert run_flowctl("runs", "--state-dir", str(state)).returncode == 0


def test_doctor_salvages_the_readable_rows_of_a_truncated_database(tmp_path):
    state = tmp_path / ".flowctl"
    for i in range(30):
        record(state, f"r{i:02d}", [f"s{j}" for j in range(20)], start=1000.0 + i * 100, logs=False)
    conn = sqlite3.connect(db.db_path(state))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    path = db.db_path(state)
    with open(path, "r+b") as fh:  # lose the last pages, as a full disk or a bad copy would
        fh.truncate(path.stat().st_size - 5 * 4096)
    got = run_flowctl("doctor", "--json", "--state-dir", str(state))
    report = json.loads(got.stdout)
    assert got.returncode == 1 and not report["healthy"]
    assert run_flowctl("runs", "--state-dir", str(state)).returncode == 74
    fixed = json.loads(run_flowctl("doctor", "--repair", "--json", "--state-dir", str(state)).stdout)
    assert fixed["healthy"], fixed
    assert "salvaged 30 runs" in fixed["actions"][0]
    listed = json.loads(run_flowctl("runs", "--json", "--limit", "100", "--state-dir", str(state)).stdout)
    assert len(listed) == 30
    assert sum(sum(r["counts"].values()) for r in listed) > 300  # most step rows came back


def test_a_newer_database_is_refused_and_moved_aside_on_request(tmp_path):
    state = tmp_path / ".flowctl"
    record(state, "r1", ["a"], start=time.time())
    conn = sqlite3.connect(db.db_path(state))
    conn.execute(f"PRAGMA user_version = {db.SCHEMA_VERSION + 5}")
    conn.close()
    got = run_flowctl("runs", "--state-dir", str(state))
    assert got.returncode == 2 and "newer flowctl" in got.stderr
    refused = run_flowctl("doctor", "--repair", "--state-dir", str(state))
    assert refused.returncode == 2 and "--move-aside" in refused.stderr
    moved = run_flowctl("doctor", "--move-aside", "--state-dir", str(state))
    assert moved.returncode == 0 and "moved" in moved.stdout
    assert list(state.glob("state.db.aside-*"))
    assert run_flowctl("runs", "--state-dir", str(state)).stdout.strip() == f"no runs recorded in {state}"


def test_doctor_records_dead_running_runs_as_interrupted(tmp_path):
    state = tmp_path / ".flowctl"
    record(state, "r1", ["a", "b"], start=time.time(), stop_after=2, logs=False)
    check = run_flowctl("doctor", "--state-dir", str(state))
    assert check.returncode == 0 and "recorded as running but its runner is gone" in check.stdout
    fixed = run_flowctl("doctor", "--repair", "--state-dir", str(state))
    assert "recorded run r1 of etl as interrupted" in fixed.stdout
    conn = sqlite3.connect(db.db_path(state))
    assert conn.execute("SELECT status FROM runs").fetchone()[0] == "interrupted"
