"""The line cron runs: ``flowctl run --scheduled`` runs when due, skips when not, and the
installed command works in cron's bare environment."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import run_flowctl


def _pipeline(folder: Path, when: datetime, zone: str = "UTC") -> Path:
    """A pipeline scheduled daily at ``when``'s wall time in ``zone``; its step leaves a marker."""
    local = when.astimezone(__import__("zoneinfo").ZoneInfo(zone))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "daily.yaml"
    path.write_text(
        "version: 1\nname: daily\n"
        f"schedule: '{local.minute} {local.hour} * * *'\ntimezone: {zone}\n"
        "steps:\n  mark:\n    run: echo ran > marker.txt; echo \"PATH=$PATH\"\n"
    )
    return path


def test_run_scheduled_runs_at_a_fire_time(tmp_path: Path) -> None:
    path = _pipeline(tmp_path / "p", datetime.now(UTC))  # fires this very minute
    done = run_flowctl("run", str(path), "--scheduled", "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "p" / "marker.txt").read_text() == "ran\n"


def test_run_scheduled_skips_when_not_due(tmp_path: Path) -> None:
    # Two hours from now in Kolkata time: a zone with a half-hour offset, not the machine's.
    path = _pipeline(tmp_path / "p", datetime.now(UTC) + timedelta(hours=2), zone="Asia/Kolkata")
    done = run_flowctl("run", str(path), "--scheduled", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "daily: not due at" in done.stdout and "Asia/Kolkata" in done.stdout
    assert not (tmp_path / "p" / "marker.txt").exists()
    assert not (tmp_path / "p" / ".flowctl" / "runs").exists()


def test_run_scheduled_without_a_schedule_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "adhoc.yaml"
    path.write_text("version: 1\nname: adhoc\nsteps:\n  a:\n    run: 'true'\n")
    done = run_flowctl("run", str(path), "--scheduled")
    assert done.returncode == 2
    assert "has no schedule" in done.stderr


def test_the_installed_line_runs_in_crons_bare_environment(tmp_path: Path) -> None:
    path = _pipeline(tmp_path / "project with space", datetime.now(UTC))
    crontab = tmp_path / "crontab"
    done = run_flowctl("schedule", "install", "--file", str(crontab), str(path))
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in crontab.read_text().splitlines() if x and not x.startswith("#")]
    command = line.split(" ", 5)[5].replace("\\%", "%")  # what cron hands to /bin/sh
    # cron's environment: no PATH beyond the basics, HOME as the working folder, no terminal.
    bare = {"HOME": str(tmp_path), "LOGNAME": "cron", "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin"}
    ran = subprocess.run(["/bin/sh", "-c", command], check=False, cwd=tmp_path, env=bare, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout == ""  # everything went to the log, so cron mails nothing
    assert (path.parent / "marker.txt").read_text() == "ran\n"
    log = (path.parent / ".flowctl" / "cron" / "daily.log").read_text()
    assert "mark" in log
    assert "\x1b[" not in log  # no terminal codes
    step_log = next((path.parent / ".flowctl" / "runs").rglob("*.log")).read_text()
    seen = step_log.split("PATH=", 1)[1].strip().split(os.pathsep)
    # the step saw the PATH of the installing shell (absolute entries, once each), not cron's
    wanted = [p for p in os.environ["PATH"].split(os.pathsep) if os.path.isabs(p)]
    assert seen == list(dict.fromkeys(wanted))
    # The run recorded its fire time: schedule list shows it as the last run, on time.
    listed = json.loads(run_flowctl("schedule", "list", "--file", str(crontab), str(path), "--json").stdout)
    (row,) = listed["schedules"]
    last = row["last_run"]
    assert last["status"] == "succeeded"
    fire = datetime.fromisoformat(last["scheduled_at"])
    assert fire.second == 0 and timedelta(0) <= datetime.fromisoformat(last["started_at"]) - fire < timedelta(minutes=15)
    assert row["missed"]["count"] == 0


def test_a_firing_while_the_previous_run_holds_the_lock_exits_75(tmp_path: Path) -> None:
    path = _pipeline(tmp_path / "p", datetime.now(UTC))
    path.write_text(path.read_text().replace("run: echo ran > marker.txt", "run: sleep 2; echo ran >> marker.txt"))
    crontab = tmp_path / "crontab"
    assert run_flowctl("schedule", "install", "--file", str(crontab), str(path)).returncode == 0
    (line,) = [x for x in crontab.read_text().splitlines() if x and not x.startswith("#")]
    command = line.split(" ", 5)[5].replace("\\%", "%")
    bare = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    first = subprocess.Popen(["/bin/sh", "-c", command], cwd=tmp_path, env=bare)
    try:
        log = path.parent / ".flowctl" / "cron" / "daily.log"
        for _ in range(100):  # until the first run has started its step
            if log.exists() and "mark" in log.read_text():
                break
            time.sleep(0.05)
        second = subprocess.run(["/bin/sh", "-c", command], cwd=tmp_path, env=bare, check=False, timeout=60)
        assert second.returncode == 75
    finally:
        assert first.wait(timeout=60) == 0
    assert (path.parent / "marker.txt").read_text() == "ran\n"  # the step ran once
    assert "lock" in log.read_text().lower()


def test_the_fire_time_reaches_the_state_store(tmp_path: Path) -> None:
    """Scheduler (RunOptions.fire_time) -> RunStarted.fire_time -> SQLite -> schedule list."""
    from flowctl.run.executors.local import LocalExecutor
    from flowctl.run.prepare import prepare_run
    from flowctl.run.scheduler import RunOptions, Scheduler, new_run_id
    from flowctl.schedule.service import StateHistory, load_pipelines
    from flowctl.state.store import SqliteRunStore

    path = _pipeline(tmp_path / "p", datetime.now(UTC))
    prepared = prepare_run(path, overrides={}, only=(), from_=())
    fire = datetime.now(UTC).replace(second=0, microsecond=0)
    state_dir = tmp_path / "p" / ".flowctl"
    store = SqliteRunStore(state_dir)
    run_id = new_run_id()
    try:
        with LocalExecutor() as executor:
            Scheduler(
                prepared.plan, prepared.invocations, executor, store, lambda event: None,
                RunOptions(logs_dir=str(state_dir / "runs" / run_id),
                           handle_signals=False, fire_time=fire.timestamp()),
                remediations=prepared.remediations, run_id=run_id,
            ).run()
    finally:
        store.close()
    (pipeline,) = load_pipelines([path])
    last = StateHistory(None).last_run(pipeline)
    assert last is not None and last.run_id == run_id
    assert last.status == "succeeded"
    assert last.scheduled_at == fire
    assert timedelta(0) <= last.started_at - fire < timedelta(minutes=15)
