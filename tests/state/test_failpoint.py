"""The test-only failpoints: exact commits at which the store dies or fails."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from flowctl.errors import StateError, UsageError
from flowctl.state import db, queries
from flowctl.state.failpoint import Failpoint, Failpoints, parse
from flowctl.state.store import SqliteRunStore
from tests.conftest import REPO, flowctl_env
from tests.state.helpers import run_events


def test_the_grammar_names_point_action_and_count():
    assert parse("state.after-commit=kill@3, state.before-commit=enospc") == (
        Failpoint("state.after-commit", "kill", 3),
        Failpoint("state.before-commit", "enospc", 1),
    )
    assert parse("") == ()


@pytest.mark.parametrize(
    "text", ["state.commit=kill", "state.after-commit=explode", "state.after-commit=kill@0", "state.after-commit=kill@x", "kill"]
)
def test_a_bad_value_is_a_usage_error_naming_it(text):
    with pytest.raises(UsageError, match="FLOWCTL_FAILPOINTS"):
        Failpoints.from_environ({"FLOWCTL_FAILPOINTS": text})


def test_enospc_fails_exactly_the_chosen_commit_and_rolls_it_back(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWCTL_FAILPOINTS", "state.before-commit=enospc@2")
    events = run_events("r1", ["a", "b"])
    store = SqliteRunStore(tmp_path)
    store.record(events[0])
    store.flush()  # commit 1: the run (a RunStarted waits for the flush of its turn)
    with pytest.raises(StateError, match="disk is full"):
        store.record(events[-1])  # RunFinished: commit 2 fails
        store.flush()
    conn = db.connect(tmp_path)
    assert queries.run_detail(conn, "r1").run.status == "running"  # commit 2 was rolled back


def test_kill_after_a_commit_leaves_exactly_that_commit_durable(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from flowctl.state.store import SqliteRunStore
        from tests.state.helpers import run_events
        store = SqliteRunStore({str(tmp_path)!r})
        for event in run_events("r1", ["a", "b", "c"]):
            store.record(event)
            store.flush()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=flowctl_env({"FLOWCTL_FAILPOINTS": "state.after-commit=kill@3"}),
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == -9, done.stderr
    conn = db.connect(tmp_path)
    detail = queries.run_detail(conn, "r1")
    assert detail.run.status == "running"
    # commit 1: RunStarted; 2: a ready; 3: a started. Nothing after the third commit exists.
    assert [(s.step, s.status) for s in detail.steps] == [("a", "running"), ("b", "pending"), ("c", "pending")]
