"""No orphans, no second copy: what a killed runner left is ended before anything starts again.

Real ``python -m flowctl run`` processes whose steps are ``sleepit.py guard`` copies: each copy
lists its pid and records every moment another copy of its step is alive beside it (in
``overlaps``). One step runs under ``setsid``, in a session of its own. The runner is killed with
SIGKILL while the steps run, then ``--resume`` must end (or wait for) the old copies before it
starts new ones: no overlap is ever recorded, and nothing is left afterwards.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import flowctl_env, run_flowctl

SLEEPIT = str(Path(__file__).resolve().parent.parent / "bin" / "sleepit.py")
GUARDED = ("plain_a", "plain_b", "detached")
sys.path.insert(0, str(Path(SLEEPIT).parent))
from sleepit import guard_alive  # noqa: E402


def guarded_pipeline(folder: Path, name: str = "guarded") -> Path:
    copy = f"{sys.executable} {SLEEPIT} guard {folder}"
    text = f"""
version: 1
name: {name}
schedule: "0 0 1 1 *"
timezone: UTC
steps:
  plain_a: {{run: '{copy} plain_a'}}
  plain_b: {{run: '{copy} plain_b'}}
  detached: {{run: 'setsid -w {copy} detached'}}
  after:
    run: 'echo after >> {folder}/after.txt'
    needs: [plain_a, plain_b, detached]
"""
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def guards(tmp_path):
    """The guard folder; afterwards every copy is let go and any survivor killed."""
    (tmp_path / "generation").write_text("1")
    yield tmp_path
    for g in range(1, 4):
        (tmp_path / f"release-{g}").touch()
    for pid in all_pids(tmp_path):
        if guard_alive(pid):
            os.kill(pid, signal.SIGKILL)


def all_pids(folder: Path, step: str | None = None) -> list[int]:
    files = [folder / f"{step}.pids"] if step else sorted(folder.glob("*.pids"))
    return [int(p) for f in files if f.exists() for p in f.read_text().split()]


def start_run(path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flowctl", "run", str(path), "--concurrency", "4", *args],
        cwd=path.parent, env=flowctl_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for(check, what: str, proc: subprocess.Popen[str] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended before {what}: {out}{err}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def all_started(folder: Path) -> bool:
    """Every guarded step runs, and its start is recorded (the runner checkpoints after spawning)."""
    if not all(list(folder.glob(f"{s}.started-*")) for s in GUARDED):
        return False
    conn = sqlite3.connect(folder / ".flowctl" / "state.db", timeout=10)
    try:
        running = conn.execute("SELECT count(*) FROM steps WHERE status = 'running'").fetchone()[0]
    finally:
        conn.close()
    return bool(running == len(GUARDED))


def kill_runner_while_steps_run(folder: Path) -> tuple[str, list[int]]:
    """Start a run, SIGKILL its runner once every guarded step runs; its run id and old pids."""
    proc = start_run(guarded_pipeline(folder))
    wait_for(lambda: all_started(folder), "every step started", proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    old = all_pids(folder)
    assert len(old) == 3 and all(guard_alive(p) for p in old), "the killed runner's steps must still run"
    run_id = json.loads(run_flowctl("runs", "--json", cwd=folder).stdout)[0]["run_id"]
    return run_id, old


def processes_of(run_id: str) -> list[int]:
    """Live processes whose environment names ``run_id`` (what a runner leaves behind)."""
    found = []
    needle = f"FLOWCTL_RUN_ID={run_id}".encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes()
                state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[-1].split()[0]
            except (OSError, IndexError):
                continue
            if needle in environ.split(b"\0") and state != b"Z":
                found.append(int(entry))
    return found


def check_no_second_copy_and_nothing_left(folder: Path, old_run: str) -> None:
    assert not (folder / "overlaps").exists(), (folder / "overlaps").read_text()
    for step in GUARDED:
        assert len(all_pids(folder, step)) == 2, f"{step}: expected the old copy and one new one"
    assert not [p for p in all_pids(folder) if guard_alive(p)], "a copy is still alive"
    assert processes_of(old_run) == []
    assert (folder / "after.txt").read_text() == "after\n"


@pytest.mark.parametrize("orphans", [None, "wait=0.3s"])
def test_resume_after_kill_9_ends_the_old_copies_first(guards, orphans):
    old_run, _old = kill_runner_while_steps_run(guards)
    (guards / "generation").write_text("2")
    (guards / "release-2").touch()  # new copies end at once; the old ones would run for 60 s
    args = ["--orphans", orphans] if orphans else []
    resumed = run_flowctl("run", str(guards / "guarded.yaml"), "--resume", *args, cwd=guards)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    out = resumed.stdout
    assert f"run {old_run} left" in out and "process(es) running when its runner died" in out
    for step in GUARDED:
        assert step in out.split("runner died:")[1].splitlines()[0]
    assert "terminated" in out
    if orphans:
        assert "waiting for them to end (--orphans wait=0.3s)" in out
    check_no_second_copy_and_nothing_left(guards, old_run)


def test_orphans_wait_lets_the_old_copies_finish_before_starting(guards):
    old_run, old = kill_runner_while_steps_run(guards)
    (guards / "generation").write_text("2")
    (guards / "release-2").touch()
    resume = start_run(guards / "guarded.yaml", "--resume", "--orphans", "wait=60s")
    assert resume.stdout is not None
    seen = []
    while not any("waiting for them to end" in line for line in seen):
        line = resume.stdout.readline()
        assert line, f"no waiting line: {seen} {resume.communicate()}"
        seen.append(line)
    assert all(len(all_pids(guards, s)) == 1 for s in GUARDED), "a new copy started while waiting"
    assert all(guard_alive(p) for p in old)
    (guards / "release-1").touch()  # the old copies finish on their own
    out, err = resume.communicate(timeout=60)
    assert resume.returncode == 0, out + err
    said = re.search(r"(\d+) process\(es\) ended \((\d+) ended by themselves\)$", "".join(seen) + out, re.M)
    assert said and said[1] == said[2], "".join(seen) + out  # none had to be terminated
    check_no_second_copy_and_nothing_left(guards, old_run)


def test_a_cron_firing_that_is_not_due_touches_nothing(guards):
    """The --scheduled check comes first: a firing that is not due ends nobody's processes
    (not even a dead run's); the next real run does."""
    old_run, old = kill_runner_while_steps_run(guards)
    fired = run_flowctl("run", str(guards / "guarded.yaml"), "--scheduled", cwd=guards)
    assert fired.returncode == 0, fired.stdout + fired.stderr
    assert "left" not in fired.stdout and all(guard_alive(p) for p in old)
    (guards / "generation").write_text("2")
    (guards / "release-2").touch()
    assert run_flowctl("run", str(guards / "guarded.yaml"), "--resume", cwd=guards).returncode == 0
    check_no_second_copy_and_nothing_left(guards, old_run)


def test_a_second_run_never_touches_a_healthy_runs_steps(guards):
    """Another run of the same pipeline exits 75 at the lock; a run of another pipeline in the
    same state folder runs beside it; neither ends the healthy run's steps."""
    first = start_run(guarded_pipeline(guards))
    wait_for(lambda: all_started(guards), "every step started", first)
    second = run_flowctl("run", str(guards / "guarded.yaml"), cwd=guards)
    assert second.returncode == 75, second.stdout + second.stderr
    other = guards / "other.yaml"
    other.write_text("version: 1\nname: other\nsteps:\n  x: {run: 'echo x'}\n")
    beside = run_flowctl("run", str(other), cwd=guards)
    assert beside.returncode == 0, beside.stdout + beside.stderr
    assert "left" not in beside.stdout
    assert all(guard_alive(p) for p in all_pids(guards)), "a healthy run's step was ended"
    (guards / "release-1").touch()
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, out + err
    assert not (guards / "overlaps").exists()


def test_orphans_takes_kill_or_wait_with_a_duration(tmp_path, write_pipeline):
    path = write_pipeline("version: 1\nname: p\nsteps:\n  a: {run: 'true'}\n")
    for bad in ("keep", "wait=soon", "kill=3s"):
        got = run_flowctl("run", str(path), "--orphans", bad, cwd=tmp_path)
        assert got.returncode == 2 and "--orphans" in got.stderr and "Traceback" not in got.stderr
    assert run_flowctl("run", str(path), "--orphans", "wait=1m", cwd=tmp_path).returncode == 0
