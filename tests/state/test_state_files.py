"""The store notices its files deleted or replaced, and a failed run is never left running."""

from __future__ import annotations

import os
import shutil

import pytest

from flowctl.errors import ExitCode, StorageError
from flowctl.state import db, lock, queries
from flowctl.state.files import FileIdentity
from flowctl.state.store import SqliteRunStore
from tests.state.helpers import run_events


def test_an_identity_names_what_happened_to_the_file(tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    ident = FileIdentity.of_path(path, "lock file")
    assert ident.changed() is None
    copy = tmp_path / "g"
    shutil.copyfile(path, copy)
    os.replace(copy, path)
    assert ident.changed() == "replaced by another file"
    path.unlink()
    assert ident.changed() == "deleted"
    with pytest.raises(StorageError) as info:
        ident.check("run r1")
    assert info.value.exit_code == ExitCode.STORAGE == 74
    assert f"the lock file {path} was deleted while run r1 was using it" in info.value.message


@pytest.mark.parametrize("what", ["state.db", "etl.lock"])
def test_the_store_stops_at_its_next_commit_when_a_file_is_replaced(tmp_path, what):
    events = run_events("r1", ["a", "b"])
    with lock.held(tmp_path, "etl") as held:
        store = SqliteRunStore(tmp_path)
        store.watch(held.identity)
        store.record(events[0])
        store.flush()  # RunStarted: committed
        target = tmp_path / what
        shutil.copyfile(target, tmp_path / "copy")
        os.replace(tmp_path / "copy", target)
        store.record(events[1])
        with pytest.raises(StorageError, match=f"{what} was replaced by another file while run r1"):
            store.flush()
        with pytest.raises(StorageError):  # and nothing more is written
            store.save_fingerprints([])
        recorded = store.abandon("stopped")
        store.close()
    # A replaced database is left alone; with only the lock replaced the run is recorded as interrupted.
    assert recorded is (what == "etl.lock")
    if what == "etl.lock":
        assert queries.find_run(db.connect(tmp_path), "r1").status == "interrupted"


def test_after_a_full_disk_the_run_is_recorded_interrupted_with_its_running_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWCTL_FAILPOINTS", "state.before-commit=enospc@3")
    events = run_events("r1", ["a", "b"], stop_after=2, finish=False)
    store = SqliteRunStore(tmp_path)
    store.record(events[0])
    store.flush()  # commit 1
    for event in events[1:4]:  # a ready, started, finished
        store.record(event)
    store.flush()  # commit 2
    for event in events[4:]:  # b ready and started
        store.record(event)
    with pytest.raises(StorageError, match="no space left on the disk that holds the state folder") as info:
        store.flush()  # commit 3: the disk is full
    assert "--repair" not in (info.value.hint or "") and "free space" in (info.value.hint or "")
    assert store.abandon("flowctl stopped: the disk is full")  # commit 4 gets through
    store.close()
    detail = queries.run_detail(db.connect(tmp_path), "r1")
    assert detail.run.status == "interrupted"
    # a's end and b's start were in the failed commit: a was running as far as the database
    # knows, so it is interrupted (it runs again on resume); b was never recorded as started.
    assert [(s.step, s.status) for s in detail.steps] == [("a", "interrupted"), ("b", "pending")]


def test_connect_readonly_reads_without_writing(tmp_path):
    store = SqliteRunStore(tmp_path)
    for event in run_events("r1", ["a"]):
        store.record(event)
    store.close()
    before = sorted(p.name for p in tmp_path.iterdir())
    conn = db.connect_readonly(tmp_path)
    assert queries.find_run(conn, "r1").status == "succeeded"
    with pytest.raises(Exception, match="readonly"):
        conn.execute("DELETE FROM runs")
    conn.close()
    assert set(before) <= {p.name for p in tmp_path.iterdir()}
