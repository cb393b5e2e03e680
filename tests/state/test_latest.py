"""``latest`` and ``latest~N``: the N-th newest run (of a pipeline when one is named), resolved in
``history.find_run`` for every command that takes a run id."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowctl.errors import UsageError
from flowctl.state import db, history
from flowctl.state.store import SqliteRunStore
from tests.state.helpers import run_events

# (pipeline, start time) per run; equal start times are broken by the run id, as `runs` orders them
RUNS = st.lists(st.tuples(st.sampled_from(["etl", "report"]), st.integers(0, 20)), max_size=12)


@contextlib.contextmanager
def store_of(folder: Path, runs: list[tuple[str, int]]) -> Iterator[sqlite3.Connection]:
    with SqliteRunStore(folder) as store:
        for i, (pipeline, start) in enumerate(runs):
            for event in run_events(f"r{i:02d}", ["a"], pipeline=pipeline, start=1000.0 + start):
                store.record(event)
    conn = db.connect(folder)
    try:
        yield conn
    finally:
        conn.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs=RUNS)
def test_latest_n_is_the_n_th_newest_and_beyond_the_oldest_is_an_error(
    tmp_path_factory: pytest.TempPathFactory, runs: list[tuple[str, int]]
) -> None:
    with store_of(tmp_path_factory.mktemp("latest"), runs) as conn:
        for pipeline in (None, "etl", "report", "/p/etl.yaml"):  # a name, or the recorded file
            newest_first = [r.run_id for r in history.list_runs(conn, pipeline, limit=None)]
            expected = sorted(
                (i for i, (p, _) in enumerate(runs) if pipeline is None or pipeline in (p, f"/p/{p}.yaml")),
                key=lambda i: (runs[i][1], f"r{i:02d}"),
                reverse=True,
            )
            assert newest_first == [f"r{i:02d}" for i in expected]
            for n, run_id in enumerate(newest_first):
                assert history.find_run(conn, f"latest~{n}", pipeline).run_id == run_id
            if newest_first:
                assert history.find_run(conn, "latest", pipeline).run_id == newest_first[0]
            with pytest.raises(UsageError, match=f"no latest~{len(newest_first)}"):
                history.find_run(conn, f"latest~{len(newest_first)}", pipeline)


@pytest.mark.parametrize("text", ["latest~", "latest~-1", "latest~1x", "latest~ 1", "latest^"])
def test_a_malformed_latest_is_a_usage_error(tmp_path: Path, text: str) -> None:
    with store_of(tmp_path, [("etl", 1)]) as conn, pytest.raises(UsageError, match=r"not a run id|no run with id"):
        history.find_run(conn, text)
