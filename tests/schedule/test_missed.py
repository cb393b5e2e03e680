"""Missed-run detection: fire times since install with no run started within their window."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flowctl.run.events import RunFinished, RunId, RunStarted, RunStatus
from flowctl.schedule.fire import make_schedule
from flowctl.schedule.status import missed_runs
from flowctl.state.store import SqliteRunStore
from tests.conftest import run_flowctl


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 1, 1, hour, minute, second, tzinfo=UTC)


def test_a_run_inside_the_window_counts_and_one_after_it_does_not() -> None:
    schedule = make_schedule("*/10 * * * *", "UTC")  # window: min(5 min, 15 min)
    starts = [
        at(0, 10, 1),  # on time
        at(0, 24, 59),  # 4m59s late: still inside the window of 00:20
        at(0, 35, 1),  # 5m01s after 00:30: outside its window, and before 00:40
        at(0, 50, 0),  # exactly at the fire time
    ]
    missed, since = missed_runs(schedule, at(0, 0, 30), starts, now=at(1, 3))
    assert since == at(0, 0, 30)
    # 00:00 is before the install; 01:00's window is still open at 01:03.
    assert [t.strftime("%H:%M") for t in missed] == ["00:30", "00:40"]


def test_a_run_before_the_fire_time_does_not_count() -> None:
    schedule = make_schedule("0 2 * * *", "UTC")
    missed, _ = missed_runs(schedule, at(0, 0), [at(1, 59, 59)], now=at(3, 0))
    assert missed == (at(2, 0),)


def test_the_window_is_capped_at_15_minutes() -> None:
    schedule = make_schedule("0 2 * * *", "UTC")
    assert missed_runs(schedule, at(0, 0), [at(2, 14, 59)], now=at(3, 0))[0] == ()
    assert missed_runs(schedule, at(0, 0), [at(2, 15, 1)], now=at(3, 0))[0] == (at(2, 0),)
    # and is not judged before it has closed
    assert missed_runs(schedule, at(0, 0), [], now=at(2, 14))[0] == ()


def test_only_the_last_seven_days_are_checked() -> None:
    schedule = make_schedule("@daily", "UTC")
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    missed, since = missed_runs(schedule, datetime(2025, 1, 1, tzinfo=UTC), [], now=now)
    assert since == now - timedelta(days=7)
    assert len(missed) == 7


def test_missed_in_the_pipelines_zone_across_dst() -> None:
    # 02:30 New York does not exist on 2026-03-08; the firing at 03:00 EDT is the one to expect.
    schedule = make_schedule("30 2 * * *", "America/New_York")
    installed = datetime(2026, 3, 7, 12, tzinfo=UTC)
    on_time = [datetime(2026, 3, 8, 7, 0, 2, tzinfo=UTC)]
    assert missed_runs(schedule, installed, on_time, now=datetime(2026, 3, 8, 12, tzinfo=UTC))[0] == ()
    late = [datetime(2026, 3, 8, 7, 30, tzinfo=UTC)]  # 02:30 EST would have been 07:30 UTC
    assert len(missed_runs(schedule, installed, late, now=datetime(2026, 3, 8, 12, tzinfo=UTC))[0]) == 1


def _record(state_dir: Path, pipeline: Path, run_id: str, start: datetime, status: RunStatus) -> None:
    store = SqliteRunStore(state_dir)
    try:
        rid = RunId(run_id)
        store.record(
            RunStarted(rid, "every10", start.timestamp(), ("a",), pipeline_path=str(pipeline),
                       fire_time=start.replace(second=0).timestamp())
        )
        store.record(RunFinished(rid, start.timestamp() + 1, status, duration=1.0))
    finally:
        store.close()


def test_list_reports_missed_runs_and_the_last_run_from_the_state_store(tmp_path: Path) -> None:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    pipeline = folder / "every10.yaml"
    pipeline.write_text(
        "version: 1\nname: every10\nschedule: '*/10 * * * *'\ntimezone: UTC\nsteps:\n  a:\n    run: 'true'\n"
    )
    crontab = tmp_path / "crontab"
    assert run_flowctl("schedule", "install", "--file", str(crontab), str(pipeline)).returncode == 0
    # Pretend the line was installed two hours ago.
    now = datetime.now(UTC)
    installed = (now - timedelta(hours=2)).replace(second=0, microsecond=0)
    text = crontab.read_text()
    text = re.sub(r'"installed_at": "[^"]+"', f'"installed_at": "{installed.isoformat()}"', text)
    crontab.write_text(text)
    fires = []
    fire = installed.replace(minute=installed.minute - installed.minute % 10) + timedelta(minutes=10)
    while fire < now + timedelta(minutes=20):  # future runs keep the newest window covered
        fires.append(fire)
        fire += timedelta(minutes=10)
    skipped = {fires[2], fires[5]}
    late = fires[7]
    state_dir = folder / ".flowctl"
    for index, fire in enumerate(fires):
        if fire in skipped:
            continue
        start = fire + (timedelta(minutes=6) if fire == late else timedelta(seconds=2))
        status = RunStatus.FAILED if index == len(fires) - 1 else RunStatus.SUCCEEDED
        _record(state_dir, pipeline, f"run-{index:02d}", start, status)
    done = run_flowctl("schedule", "list", "--file", str(crontab), str(pipeline), "--json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["schedules"]
    missed = [datetime.fromisoformat(t) for t in row["missed"]["times"]]
    assert missed == sorted([*skipped, late])
    assert row["missed"]["count"] == 3
    assert row["last_run"]["run_id"] == f"run-{len(fires) - 1:02d}"
    assert row["last_run"]["status"] == "failed"
    assert row["last_run"]["scheduled_at"] == fires[-1].isoformat()
    # --check turns missed runs into exit 1 (a monitoring gate); the text names them.
    checked = run_flowctl("schedule", "list", "--file", str(crontab), str(pipeline), "--check")
    assert checked.returncode == 1
    assert "missed     3 (latest:" in checked.stdout
    assert "last run   failed at" in checked.stdout
