"""State loss is never silent: empty or foreign databases, files deleted or replaced under a
run, a full disk for the state and for the logs, a read-only state folder.

Real ``python -m flowctl`` processes. Mid-run changes are synchronised on a step having started
(it creates ``started`` and then waits for a ``go`` file; the step after it must never get its
work done once the state is lost); the full disk comes from the store's
failpoint (``FLOWCTL_FAILPOINTS=state.before-commit=enospc@N``, at every commit in turn) and
from ``/dev/full`` behind a symlinked log folder; read-only is ``chattr +i`` (root ignores
file modes), so SQLite really cannot make the WAL's index.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import flowctl_env, run_flowctl, tool_missing

WAITING = """
version: 1
name: {name}
steps:
  a: {{run: 'touch started; while [ ! -f go ]; do sleep 0.02; done'}}
  b: {{run: 'sleep 0.5; touch b-ran', needs: [a]}}
"""
# b's work takes a moment: the scheduler checkpoints after starting what a result unblocked, so b
# may be started and killed at once; with a checkpoint before starting it is never started.


def waiting_pipeline(folder: Path, name: str = "held") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(WAITING.format(name=name))
    return path


_STARTED: list[subprocess.Popen[str]] = []


def start_run(path: Path, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowctl", "run", str(path), *args],
        cwd=path.parent, env=flowctl_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    _STARTED.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _let_go(tmp_path):
    """Whatever a test leaves waiting (a failed assertion, a timed-out run) ends with it: the
    waiting steps see ``go``, the runners started here are stopped."""
    yield
    (tmp_path / "go").touch()
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=60)


def wait_started(folder: Path, proc: subprocess.Popen[str]) -> None:
    """Until step a runs and its start is recorded (the runner checkpoints after spawning)."""
    deadline = time.monotonic() + 30
    while not ((folder / "started").exists() and recorded_running(folder)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)


def recorded_running(folder: Path) -> bool:
    conn = sqlite3.connect(folder / ".flowctl" / "state.db", timeout=10)
    try:
        return conn.execute("SELECT 1 FROM steps WHERE step = 'a' AND status = 'running'").fetchone() is not None
    except sqlite3.OperationalError:  # no tables yet
        return False
    finally:
        conn.close()


def raw_runs(folder: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(folder / ".flowctl" / "state.db")
    try:
        return conn.execute("SELECT run_id, status FROM runs ORDER BY started_at").fetchall()
    finally:
        conn.close()


# -- empty or foreign databases -------------------------------------------------------------


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _sqlite_without_tables(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("DROP TABLE t")
    conn.commit()
    conn.close()


def _foreign_tables(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("make", [_empty, _sqlite_without_tables, _foreign_tables])
def test_an_empty_or_foreign_state_db_is_an_error_with_the_way_out(tmp_path, write_pipeline, make):
    path = write_pipeline("version: 1\nname: g\nsteps:\n  a: {run: 'echo a >> ledger.txt'}\n")
    (tmp_path / ".flowctl").mkdir()
    make(tmp_path / ".flowctl" / "state.db")
    got = run_flowctl("run", str(path), cwd=tmp_path)
    assert got.returncode == 74, got.stdout + got.stderr
    assert "not a flowctl state database" in got.stderr and "flowctl doctor" in got.stderr
    assert "Traceback" not in got.stderr and not (tmp_path / "ledger.txt").exists()
    for reader in (["runs"], ["stats", str(path)]):
        read = run_flowctl(*reader, cwd=tmp_path)
        assert read.returncode == 74 and "not a flowctl state database" in read.stderr, read.stderr
    doctor = run_flowctl("doctor", str(path), cwd=tmp_path)
    assert doctor.returncode == 1 and "problems found" in doctor.stdout and "healthy\n" not in doctor.stdout
    assert run_flowctl("doctor", str(path), "--repair", cwd=tmp_path).returncode == 0
    assert list((tmp_path / ".flowctl").glob("state.db.bad-*")), "the bad file is kept aside"
    assert run_flowctl("run", str(path), cwd=tmp_path).returncode == 0
    assert (tmp_path / "ledger.txt").read_text() == "a\n"


def test_a_database_is_created_whole_or_not_at_all(tmp_path, write_pipeline):
    """A runner killed while it creates the database leaves no half-made ``state.db`` (which
    the next run would refuse as foreign): it is built under a temporary name and linked into
    place; the next run cleans the dead creator's temporary file and creates it again."""
    path = write_pipeline("version: 1\nname: g\nsteps:\n  a: {run: 'echo a >> ledger.txt'}\n")
    env = flowctl_env({"FLOWCTL_FAILPOINTS": "state.before-link=kill"})
    died = subprocess.run([sys.executable, "-m", "flowctl", "run", str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert died.returncode == -signal.SIGKILL, died.stderr
    state = tmp_path / ".flowctl"
    assert not (state / "state.db").exists()
    assert [p.name for p in state.glob(".state.db.new-*")], "the kill came while the database was being made"
    again = run_flowctl("run", str(path), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "ledger.txt").read_text() == "a\n"
    assert not list(state.glob(".state.db.new-*"))


# -- deleted or replaced under a run ----------------------------------------------------------


def _delete(path: Path) -> None:
    path.unlink()


def _replace(path: Path) -> None:
    copy = path.with_name(path.name + ".copy")
    shutil.copyfile(path, copy)
    os.replace(copy, path)  # same content, another file


@pytest.mark.parametrize("change", [_delete, _replace])
def test_the_database_deleted_or_replaced_mid_run_stops_it_with_74(tmp_path, change):
    path = waiting_pipeline(tmp_path)
    proc = start_run(path)
    wait_started(tmp_path, proc)
    change(tmp_path / ".flowctl" / "state.db")
    (tmp_path / "go").touch()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 74, out + err
    assert f"the state database {tmp_path / '.flowctl' / 'state.db'} was" in err
    assert ("deleted" if change is _delete else "replaced by another file") in err
    assert "Traceback" not in err
    assert not (tmp_path / "b-ran").exists(), "new work started after the state was lost"
    again = run_flowctl("run", str(path), cwd=tmp_path)  # the folder is usable again
    assert again.returncode == 0 and (tmp_path / "b-ran").exists(), again.stdout + again.stderr


def _waiting_then_go(path: Path):
    """Run ``path`` to its waiting step; return the process."""
    proc = start_run(path)
    wait_started(path.parent, proc)
    return proc


@pytest.mark.parametrize("change", [_delete, _replace])
def test_the_lock_file_deleted_or_replaced_mid_run_keeps_excluding_and_stops_the_run(tmp_path, change):
    path = waiting_pipeline(tmp_path)
    lock_file = tmp_path / ".flowctl" / "held.lock"
    first = _waiting_then_go(path)
    change(lock_file)
    second = run_flowctl("run", str(path), cwd=tmp_path)
    assert second.returncode == 75, second.stdout + second.stderr
    assert "lock file" in second.stderr and "deleted or replaced" in second.stderr
    assert first.poll() is None and not (tmp_path / "b-ran").exists()
    (tmp_path / "go").touch()
    out, err = first.communicate(timeout=60)
    assert first.returncode == 74, out + err
    assert f"the lock file {lock_file} was" in err and "Traceback" not in err
    assert "(it no longer keeps a second run of the pipeline out)" in err  # trial 17: not "nothing can be recorded"
    assert not (tmp_path / "b-ran").exists()
    assert [status for _, status in raw_runs(tmp_path)] == ["interrupted"]  # never left running


def test_a_run_locks_the_file_at_the_path_even_when_the_holder_replaced_it(tmp_path):
    """The holder replaces the lock file and exits: a waiter gets the old (now unlinked) file's
    lock, sees it is not the file at the path any more, and locks that one instead, so a third
    taker is excluded (without the check both would hold a lock)."""
    from flowctl.errors import LockedError
    from flowctl.state import lock
    from tests.conftest import REPO

    script = (
        f"import os, sys, time; sys.path.insert(0, {str(REPO)!r}); from flowctl.state import lock\n"
        f"held = lock.acquire({str(tmp_path)!r}, 'etl'); print('locked', flush=True); sys.stdin.readline()\n"
        f"open({str(tmp_path / 'new.lock')!r}, 'w').close(); os.replace({str(tmp_path / 'new.lock')!r}, held.path)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "locked"
    holder.stdin.write("go\n")
    holder.stdin.flush()
    with lock.held(tmp_path, "etl", wait=30) as taken:
        holder.wait()
        assert taken.identity.changed() is None  # what we hold is the file at the path
        with pytest.raises(LockedError) as info:
            lock.acquire(tmp_path, "etl")
        assert "--state-dir" not in (info.value.hint or "")  # issue 13: never suggest a second folder


# -- disk full ---------------------------------------------------------------------------------

QUICK = """
version: 1
name: quick
steps:
  a: {run: 'echo a'}
  b: {run: 'echo b', needs: [a]}
  c: {run: 'echo c', needs: [a]}
"""


def test_a_full_disk_at_any_commit_is_exit_74_and_never_leaves_the_run_running(tmp_path, write_pipeline):
    path = write_pipeline(QUICK)
    state = tmp_path / ".flowctl"
    failed_at = []
    for n in range(1, 100):
        env = {"FLOWCTL_FAILPOINTS": f"state.before-commit=enospc@{n}"}
        got = run_flowctl("run", str(path), cwd=tmp_path, env=env)
        if got.returncode == 0:
            break  # n is past the run's last commit: every commit has failed once
        assert got.returncode == 74, f"commit {n}: {got.stdout}{got.stderr}"
        assert f"no space left on the disk that holds the state folder {state}" in got.stderr
        assert "free space" in got.stderr and "--repair" not in got.stderr and "Traceback" not in got.stderr
        assert "running" not in {status for _, status in raw_runs(tmp_path)}, f"commit {n}"
        failed_at.append(n)
    assert len(failed_at) >= 5, failed_at  # the loop reached the run's own commits
    statuses = [status for _, status in raw_runs(tmp_path)]
    assert statuses[-1] == "succeeded" and set(statuses[:-1]) <= {"interrupted"}


def test_an_io_error_is_exit_74_too(tmp_path, write_pipeline):
    path = write_pipeline(QUICK)
    got = run_flowctl("run", str(path), cwd=tmp_path, env={"FLOWCTL_FAILPOINTS": "state.before-commit=eio@4"})
    assert got.returncode == 74 and "disk I/O error" in got.stderr and "Traceback" not in got.stderr


def test_a_log_on_a_full_disk_stops_the_run_with_74(tmp_path, write_pipeline):
    full = tmp_path / "full-disk"
    full.mkdir()
    (full / "1.log").symlink_to("/dev/full")
    logs = tmp_path / ".flowctl" / "runs"
    path = write_pipeline(
        f"""
        version: 1
        name: noisy
        steps:
          prep: {{run: 'ln -s {full} "{logs}/$FLOWCTL_RUN_ID/noisy"'}}
          noisy: {{run: 'echo hello; echo more', needs: [prep]}}
          later: {{run: 'touch later-ran', needs: [noisy]}}
        """
    )
    got = run_flowctl("run", str(path), cwd=tmp_path)
    assert got.returncode == 74, got.stdout + got.stderr
    assert "step noisy: could not write the log" in got.stderr
    assert "no space left on the disk that holds" in got.stderr and "/noisy" in got.stderr
    assert "free space" in got.stderr and "Traceback" not in got.stderr
    assert not (tmp_path / "later-ran").exists()
    runs = json.loads(run_flowctl("runs", "--json", cwd=tmp_path).stdout)
    assert [r["status"] for r in runs] == ["interrupted"]


# -- a read-only state folder ------------------------------------------------------------------


@pytest.fixture
def read_only_state(tmp_path, write_pipeline):
    """A state folder with two runs, made immutable (``chattr +i``: even root cannot write it)."""
    path = write_pipeline("version: 1\nname: ro\nsteps:\n  a: {run: 'echo hello from a'}\n  b: {run: 'exit 3'}\n")
    assert run_flowctl("run", str(path), cwd=tmp_path).returncode == 1
    assert run_flowctl("run", str(path), cwd=tmp_path).returncode == 1
    state = tmp_path / ".flowctl"
    assert not (state / "state.db-shm").exists()
    files = [str(p) for p in state.rglob("*")] + [str(state)]
    if shutil.which("chattr") is None:
        tool_missing("chattr is needed to make a folder read-only for root")
    made = subprocess.run(["chattr", "+i", *files], capture_output=True, text=True)
    try:
        if made.returncode != 0:
            tool_missing(f"chattr +i does not work here: {made.stderr.strip()}")
        yield path, state
    finally:
        subprocess.run(["chattr", "-i", *files], capture_output=True)


def test_history_commands_work_on_a_read_only_state_folder(read_only_state, tmp_path):
    path, state = read_only_state
    from flowctl.state import db

    with pytest.raises(sqlite3.OperationalError):  # the plain read-only open cannot make the index...
        sqlite3.connect(f"file:{state / 'state.db'}?mode=ro", uri=True).execute("SELECT 1 FROM runs").fetchone()
    conn = db.read_only(state / "state.db")  # ...so flowctl falls back to immutable=1
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    conn.close()
    runs = run_flowctl("runs", "--json", cwd=tmp_path)
    assert runs.returncode == 0, runs.stderr
    listed = json.loads(runs.stdout)
    assert [r["status"] for r in listed] == ["failed", "failed"]
    run_id = listed[0]["run_id"]
    show = run_flowctl("show", run_id, "--json", cwd=tmp_path)
    assert show.returncode == 0 and json.loads(show.stdout)["run"]["run_id"] == run_id
    logs = run_flowctl("logs", run_id, "a", cwd=tmp_path)
    assert logs.returncode == 0 and "hello from a" in logs.stdout
    stats = run_flowctl("stats", str(path), cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert not (state / "state.db-shm").exists()
    doctor = run_flowctl("doctor", str(path), cwd=tmp_path)
    assert doctor.returncode == 0 and "cannot be written here" in doctor.stdout, doctor.stdout + doctor.stderr


@pytest.mark.parametrize("command", [["doctor", "--repair"], ["doctor", "--move-aside"], ["run"]])
def test_writing_to_a_read_only_state_folder_is_exit_74(read_only_state, tmp_path, command):
    path, state = read_only_state
    got = run_flowctl(command[0], str(path), *command[1:], cwd=tmp_path)
    assert got.returncode == 74, got.stdout + got.stderr
    assert str(state) in got.stderr and "Traceback" not in got.stderr and "internal error" not in got.stderr


# -- exit code 74 is documented ------------------------------------------------------------------


def test_help_lists_exit_code_74():
    assert " 74  the state or log storage failed" in run_flowctl("--help").stdout
    run_help = run_flowctl("run", "--help").stdout
    assert "74 the state or log storage failed" in " ".join(run_help.split())


def test_state_storage_failures_exit_74_with_the_doctor_command_to_type(tmp_path):
    """An empty or corrupt state.db, and a state folder that cannot be made, are storage
    failures (74, README's table), and the `doctor` hint carries the --state-dir it needs."""
    state = tmp_path / "elsewhere" / ".flowctl"
    state.mkdir(parents=True)
    (tmp_path / "p.yaml").write_text("version: 1\nname: p\nsteps:\n  a: {run: 'true'}\n")
    for content in (b"", b"garbage" * 1000):
        db_file = state / "state.db"
        db_file.write_bytes(content)
        got = run_flowctl("runs", "--state-dir", str(state), cwd=tmp_path)
        assert got.returncode == 74, got.stdout + got.stderr
        assert "flowctl doctor --state-dir elsewhere/.flowctl" in got.stderr, got.stderr
        here = run_flowctl("runs", cwd=state.parent)
        assert here.returncode == 74 and "`flowctl doctor`" in here.stderr, here.stderr
    made = run_flowctl("run", "p.yaml", cwd=tmp_path, env={"FLOWCTL_STATE_DIR": "/proc/x"})
    assert made.returncode == 74 and "cannot create state folder /proc/x" in made.stderr, made.stderr


def test_runs_whose_records_were_lost_are_never_no_runs_and_doctor_reports_them(tmp_path):
    """After the database went (``rm .flowctl/state.db``), ``runs`` and ``show`` say the
    database lost the runs its ``runs/`` folder holds and point at ``doctor``, which reports
    them (trial of main: "no runs recorded", exit 0, and "healthy")."""
    (tmp_path / "p.yaml").write_text("version: 1\nname: p\nsteps:\n  a: {run: 'echo a'}\n")
    for _ in range(2):
        assert run_flowctl("run", "p.yaml", cwd=tmp_path).returncode == 0
    folders = sorted(p.name for p in (tmp_path / ".flowctl" / "runs").iterdir())
    (tmp_path / ".flowctl" / "state.db").unlink()
    for args in (["runs"], ["show", "latest"]):
        got = run_flowctl(*args, cwd=tmp_path)
        assert got.returncode == 74, (args, got.stdout, got.stderr)
        assert "no runs recorded" not in got.stdout + got.stderr
        assert "lost their records" in got.stderr and "`flowctl doctor`" in got.stderr, got.stderr
    doctor = run_flowctl("doctor", cwd=tmp_path)
    assert doctor.returncode == 1 and "healthy\n" not in doctor.stdout, doctor.stdout
    assert "2 run folder(s)" in doctor.stdout and folders[-1] in doctor.stdout, doctor.stdout
    # A new run records itself; the lost ones stay reported until their folders are removed.
    assert run_flowctl("run", "p.yaml", cwd=tmp_path).returncode == 0
    assert run_flowctl("runs", cwd=tmp_path).returncode == 0
    assert "2 run folder(s)" in run_flowctl("doctor", cwd=tmp_path).stdout
    for name in folders:
        shutil.rmtree(tmp_path / ".flowctl" / "runs" / name)
    assert run_flowctl("doctor", cwd=tmp_path).returncode == 0
