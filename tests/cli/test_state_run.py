"""``flowctl run`` with state: crash and resume, SIGINT and resume, up to date, the lock.

Real ``python -m flowctl run`` processes whose steps append to a ledger file; real SIGKILL and
SIGINT; the real SQLite state folder read back afterwards.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import flowctl_env, run_flowctl

# Ten steps: a fan-out of six behind `extract`, then two joins and a final step. Each step
# writes "start <id>" to the ledger, sleeps, then "end <id>".
STEPS = {
    "extract": [],
    "clean_a": ["extract"], "clean_b": ["extract"], "clean_c": ["extract"],
    "clean_d": ["extract"], "clean_e": ["extract"], "clean_f": ["extract"],
    "join_1": ["clean_a", "clean_b", "clean_c"],
    "join_2": ["clean_d", "clean_e", "clean_f"],
    "report": ["join_1", "join_2"],
}


def ledger_pipeline(folder: Path, sleep: float = 0.15) -> Path:
    lines = ["version: 1", "name: ledger", "steps:"]
    for sid, needs in STEPS.items():
        lines.append(f"  {sid}:")
        lines.append(f"    run: echo start {sid} >> ledger.txt; sleep {sleep}; echo end {sid} >> ledger.txt")
        if needs:
            lines.append(f"    needs: [{', '.join(needs)}]")
    path = folder / "pipeline.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def ledger(folder: Path) -> list[tuple[str, str]]:
    path = folder / "ledger.txt"
    if not path.exists():
        return []
    return [tuple(line.split()) for line in path.read_text().splitlines() if line.strip()]  # type: ignore[misc]


def start_run(path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flowctl", "run", str(path), "--concurrency", "2", *args],
        cwd=path.parent, env=flowctl_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_lines(folder: Path, count: int, proc: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(ledger(folder)) < count:
        assert proc.poll() is None, "the run ended before the moment to stop it"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)


def recorded_successes(folder: Path) -> set[str]:
    conn = sqlite3.connect(folder / ".flowctl" / "state.db")
    try:
        return {r[0] for r in conn.execute("SELECT step FROM steps WHERE status = 'succeeded'")}
    finally:
        conn.close()


def wait_for_orphans(folder: Path) -> None:
    """A killed runner leaves its running steps behind (as a real crash would); let them end."""
    for _ in range(100):
        entries = ledger(folder)
        started = Counter(s for kind, s in entries if kind == "start")
        ended = Counter(s for kind, s in entries if kind == "end")
        if started == ended:
            return
        time.sleep(0.05)


def check_resumed(folder: Path, before: set[str]) -> None:
    entries = ledger(folder)
    ends = Counter(s for kind, s in entries if kind == "end")
    starts = Counter(s for kind, s in entries if kind == "start")
    assert set(ends) == set(STEPS), f"not every step completed: {sorted(set(STEPS) - set(ends))}"
    for sid in before:
        assert starts[sid] == 1, f"{sid} succeeded before the crash and ran again"


@pytest.mark.parametrize("moment", [1, 4, 9, 15])
def test_kill_9_then_resume_completes_everything_and_repeats_no_success(tmp_path, moment):
    path = ledger_pipeline(tmp_path)
    proc = start_run(path)
    wait_for_lines(tmp_path, moment, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    wait_for_orphans(tmp_path)
    before = recorded_successes(tmp_path)
    if moment >= 9:
        assert "extract" in before  # the test has teeth: recorded successes exist
    resumed = run_flowctl("run", str(path), "--resume", "--concurrency", "2", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "was interrupted (its runner died)" in resumed.stdout
    check_resumed(tmp_path, before)
    runs = json.loads(run_flowctl("runs", "--json", cwd=tmp_path).stdout)
    assert [r["status"] for r in runs] == ["succeeded", "interrupted"]
    assert runs[0]["resumed_from"] == runs[1]["run_id"]
    assert runs[0]["counts"].get("reused", 0) == len(before)


@pytest.mark.parametrize("moment", [2, 9])
def test_sigint_then_resume(tmp_path, moment):
    path = ledger_pipeline(tmp_path, sleep=0.3)
    proc = start_run(path)
    wait_for_lines(tmp_path, moment, proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    before = recorded_successes(tmp_path)
    assert len(before) < len(STEPS)
    shown = json.loads(run_flowctl("runs", "--json", cwd=tmp_path).stdout)
    assert shown[0]["status"] == "interrupted"
    resumed = run_flowctl("run", str(path), "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming run {shown[0]['run_id']}: reusing {len(before)} step(s)" in resumed.stdout
    assert "cancelled in run" in resumed.stdout  # why the stopped steps run again
    check_resumed(tmp_path, before)


def test_resuming_a_finished_run_does_nothing(tmp_path):
    path = ledger_pipeline(tmp_path, sleep=0)
    assert run_flowctl("run", str(path), cwd=tmp_path).returncode == 0
    lines = len(ledger(tmp_path))
    again = run_flowctl("run", str(path), "--resume", cwd=tmp_path)
    assert again.returncode == 0
    assert "nothing to do: every step of run" in again.stdout
    assert len(ledger(tmp_path)) == lines
    assert len(json.loads(run_flowctl("runs", "--json", cwd=tmp_path).stdout)) == 1


def test_resume_reruns_a_changed_step_and_what_is_downstream(tmp_path):
    path = ledger_pipeline(tmp_path, sleep=0)
    assert run_flowctl("run", str(path), cwd=tmp_path).returncode == 0
    path.write_text(path.read_text().replace("echo end join_2", "echo end  join_2"))
    again = run_flowctl("run", str(path), "--resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "run join_2: the command changed since run" in again.stdout
    assert "run report: upstream join_2 will run" in again.stdout
    starts = Counter(s for kind, s in ledger(tmp_path) if kind == "start")
    assert starts["join_2"] == 2 and starts["report"] == 2 and starts["join_1"] == 1


def test_resume_with_other_params_or_selection_is_a_usage_error(tmp_path, write_pipeline):
    path = write_pipeline(
        """
        version: 1
        name: p
        params:
          day: {type: string, default: mon}
        steps:
          a: {run: 'echo ${{ params.day }} >> ledger.txt'}
          b: {run: 'exit 3', needs: [a]}
        """
    )
    assert run_flowctl("run", str(path), "-p", "day=tue", cwd=tmp_path).returncode == 1
    bad = run_flowctl("run", str(path), "--resume", "-p", "day=wed", cwd=tmp_path)
    assert bad.returncode == 2 and "which ran with day='tue', not day='wed'" in bad.stderr
    bad = run_flowctl("run", str(path), "--resume", "--only", "a", cwd=tmp_path)
    assert bad.returncode == 2 and "--only" in bad.stderr
    same = run_flowctl("run", str(path), "--resume", cwd=tmp_path)  # recorded params are used
    assert same.returncode == 1 and "reusing 1 step(s)" in same.stdout
    assert (tmp_path / "ledger.txt").read_text() == "tue\n"
    # Issue 12: nothing recorded to resume (a kill before the first commit) starts a new run and
    # says so, with the params and selection given.
    none = run_flowctl("run", str(path), "--resume", "-p", "day=thu", "--only", "a",
                       "--state-dir", str(tmp_path / "empty"), cwd=tmp_path)
    assert none.returncode == 0, none.stdout + none.stderr
    assert "no recorded run of p to resume in " in none.stdout and "starting a new run" in none.stdout
    assert (tmp_path / "ledger.txt").read_text() == "tue\nthu\n"
    unknown = run_flowctl("run", str(path), "--run-id", "nope", "--state-dir", str(tmp_path / "void"), cwd=tmp_path)
    assert unknown.returncode == 2 and "no run with id 'nope'" in unknown.stderr


def test_resume_a_chosen_run_id(tmp_path, write_pipeline):
    path = write_pipeline(
        """
        version: 1
        name: p
        params:
          n: {type: integer, default: 1}
        steps:
          a: {run: 'echo ${{ params.n }} >> ledger.txt; test ${{ params.n }} -ne 2'}
        """
    )
    run_flowctl("run", str(path), "-p", "n=2", cwd=tmp_path)
    first = json.loads(run_flowctl("runs", "--json", cwd=tmp_path).stdout)[0]["run_id"]
    run_flowctl("run", str(path), "-p", "n=3", cwd=tmp_path)
    again = run_flowctl("run", str(path), "--run-id", first, cwd=tmp_path)
    assert again.returncode == 1  # n=2 again, from the chosen run
    assert (tmp_path / "ledger.txt").read_text() == "2\n3\n2\n"
    other = write_pipeline("version: 1\nname: q\nsteps:\n  a: {run: 'true'}\n", name="other.yaml")
    wrong = run_flowctl("run", str(other), "--run-id", first, cwd=tmp_path)
    assert wrong.returncode == 2 and f"run {first} is a run of " in wrong.stderr


UP_TO_DATE = """
version: 1
name: build
steps:
  compile:
    run: echo compile >> ledger.txt; cat src.txt > obj.txt
    inputs: [src.txt]
    outputs: [obj.txt]
  link:
    run: echo link >> ledger.txt; cat obj.txt > app.txt
    needs: [compile]
    outputs: [app.txt]
  docs:
    run: echo docs >> ledger.txt; echo docs > docs.txt
    outputs: [docs.txt]
"""


def ran(folder: Path) -> list[str]:
    text = (folder / "ledger.txt").read_text() if (folder / "ledger.txt").exists() else ""
    (folder / "ledger.txt").write_text("")
    return sorted(text.split())


def test_up_to_date_skipping_and_invalidation(tmp_path, write_pipeline):
    path = write_pipeline(UP_TO_DATE)
    (tmp_path / "src.txt").write_text("v1")
    assert run_flowctl("run", str(path), cwd=tmp_path).returncode == 0
    assert ran(tmp_path) == ["compile", "docs", "link"]
    again = run_flowctl("run", str(path), cwd=tmp_path)
    assert again.returncode == 0 and "nothing to run: all 3 step(s) up to date" in again.stdout
    assert ran(tmp_path) == []
    # An input file changes: its step and what needs it run again.
    (tmp_path / "src.txt").write_text("v2")
    explain = run_flowctl("plan", str(path), "--explain", "--check", cwd=tmp_path)
    assert explain.returncode == 1
    assert "compile  run         input src.txt changed since run" in explain.stdout
    assert run_flowctl("run", str(path), cwd=tmp_path).returncode == 0
    assert ran(tmp_path) == ["compile", "link"]
    assert (tmp_path / "app.txt").read_text() == "v2"
    # An output is deleted or edited: that step runs again.
    (tmp_path / "docs.txt").unlink()
    (tmp_path / "app.txt").write_text("tampered")
    assert run_flowctl("run", str(path), cwd=tmp_path).returncode == 0
    assert ran(tmp_path) == ["docs", "link"]
    # The command changes.
    path.write_text(path.read_text().replace("echo docs > docs.txt", "echo docs! > docs.txt"))
    assert run_flowctl("run", str(path), cwd=tmp_path).returncode == 0
    assert ran(tmp_path) == ["docs"]
    clean = run_flowctl("plan", str(path), "--explain", "--check", "--json", cwd=tmp_path)
    assert clean.returncode == 0
    assert {s["verdict"] for s in json.loads(clean.stdout)["steps"]} == {"up to date"}
    # --force-step reruns a step and what needs it; --force everything.
    assert run_flowctl("run", str(path), "--force-step", "compile", cwd=tmp_path).returncode == 0
    assert ran(tmp_path) == ["compile", "link"]
    assert run_flowctl("run", str(path), "--force", cwd=tmp_path).returncode == 0
    assert ran(tmp_path) == ["compile", "docs", "link"]
    bad = run_flowctl("run", str(path), "--force-step", "compil", cwd=tmp_path)
    assert bad.returncode == 2 and "did you mean 'compile'" in bad.stderr


def test_a_second_run_gets_the_lock_code_or_waits(tmp_path, write_pipeline):
    # The step holds until the test releases it (readiness, not a fixed sleep that a slow start
    # of the second flowctl could outlast on a busy machine).
    path = write_pipeline(
        """
        version: 1
        name: slow
        steps:
          nap: {run: 'echo nap >> ledger.txt; while [ ! -e release ]; do sleep 0.02; done'}
        """
    )
    first = start_run(path)
    wait_for_file = time.monotonic() + 20
    while not (tmp_path / "ledger.txt").exists():
        assert time.monotonic() < wait_for_file
        time.sleep(0.02)
    second = run_flowctl("run", str(path), cwd=tmp_path)
    assert second.returncode == 75
    assert f"pid {first.pid}" in second.stderr and "pipeline slow is already running: run 2" in second.stderr
    assert "--wait" in second.stderr and "Traceback" not in second.stderr
    waiting = subprocess.Popen(
        [sys.executable, "-m", "flowctl", "run", str(path), "--wait", "60s"], cwd=tmp_path, env=flowctl_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    (tmp_path / "release").touch()
    first.communicate(timeout=60)
    assert first.returncode == 0
    _, err = waiting.communicate(timeout=90)
    assert waiting.returncode == 0, err
    assert (tmp_path / "ledger.txt").read_text() == "nap\nnap\n"
    statuses = [r["status"] for r in json.loads(run_flowctl("runs", "--json", cwd=tmp_path).stdout)]
    assert statuses == ["succeeded", "succeeded"]


def test_a_garbage_state_database_stops_run_with_a_way_out(tmp_path, write_pipeline):
    path = write_pipeline("version: 1\nname: g\nsteps:\n  a: {run: 'echo a >> ledger.txt'}\n")
    (tmp_path / ".flowctl").mkdir()
    (tmp_path / ".flowctl" / "state.db").write_bytes(b"garbage" * 1000)
    got = run_flowctl("run", str(path), cwd=tmp_path)
    assert got.returncode == 74
    assert "corrupt" in got.stderr and "flowctl doctor --repair" in got.stderr
    assert "Traceback" not in got.stderr and not (tmp_path / "ledger.txt").exists()
    assert run_flowctl("doctor", str(path), "--repair", cwd=tmp_path).returncode == 0
    assert run_flowctl("run", str(path), cwd=tmp_path).returncode == 0
    assert (tmp_path / "ledger.txt").read_text() == "a\n"


def test_every_attempt_is_recorded_with_times_host_and_fingerprint(tmp_path, write_pipeline):
    path = write_pipeline(
        """
        version: 1
        name: rec
        steps:
          flaky:
            run: 'test -f once || { touch once; exit 4; }'
            retries: 1
            retry_delay: 0.01
          after: {run: 'true', needs: [flaky]}
        """
    )
    assert run_flowctl("run", str(path), cwd=tmp_path).returncode == 0
    run_id = json.loads(run_flowctl("runs", "--json", cwd=tmp_path).stdout)[0]["run_id"]
    detail = json.loads(run_flowctl("show", run_id, "--json", cwd=tmp_path).stdout)
    assert detail["run"]["provenance"]["pipeline_sha256"]
    flaky = detail["steps"][0]
    assert flaky["step"] == "flaky" and flaky["attempts"] == 2 and flaky["fingerprint"]
    assert flaky["ready_at"] <= flaky["started_at"] <= flaky["finished_at"]
    first, second = flaky["attempt_records"]
    assert (first["outcome"], first["exit_code"], second["outcome"]) == ("failed", 4, "ok")
    assert first["host"] and first["fingerprint"] == flaky["fingerprint"]
    assert first["log_path"].endswith("/flaky/1.log") and first["retry_delay"] is not None
    logs = run_flowctl("logs", run_id, "flaky", "--attempt", "1", cwd=tmp_path)
    assert logs.returncode == 0


def test_plan_explain_resume_names_the_changed_parts(tmp_path, write_pipeline):
    path = write_pipeline(
        """
        version: 1
        name: ex
        steps:
          a: {run: 'echo a'}
          b: {run: 'echo b', needs: [a], env: {MODE: fast}}
          c: {run: 'exit 5', needs: [a]}
        """
    )
    assert run_flowctl("run", str(path), cwd=tmp_path).returncode == 1
    got = json.loads(run_flowctl("plan", str(path), "--explain", "--resume", "--json", cwd=tmp_path).stdout)
    verdicts = {s["step"]: (s["verdict"], s["reason"]) for s in got["steps"]}
    assert verdicts["a"][0] == verdicts["b"][0] == "reused"
    assert verdicts["c"] == ("run", f"failed in run {got['resumes']}")
    path.write_text(path.read_text().replace("MODE: fast", "MODE: slow").replace("echo b", "echo bb"))
    got = json.loads(run_flowctl("plan", str(path), "--explain", "--resume", "--json", cwd=tmp_path).stdout)
    b = next(s for s in got["steps"] if s["step"] == "b")
    assert [c["part"] for c in b["changes"]] == ["command", "env:MODE"]
    assert b["reason"].startswith("the command changed; env MODE changed since run")
    check = run_flowctl("plan", str(path), "--explain", "--resume", "--check", cwd=tmp_path)
    assert check.returncode == 1 and "2 of 3 steps would run (resuming run" in check.stdout


def test_a_secret_value_never_reaches_the_state_database(tmp_path, write_pipeline):
    secret = "s3cr3t-value-4242"
    path = write_pipeline(
        f"""
        version: 1
        name: sec
        steps:
          push:
            run: 'echo "token is $TOKEN"; test -n "$TOKEN"'
            env: {{TOKEN: {secret}}}
            secret_env: [TOKEN]
        """
    )
    assert run_flowctl("run", str(path), cwd=tmp_path).returncode == 0
    state = tmp_path / ".flowctl"
    conn = sqlite3.connect(state / "state.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for f in state.glob("state.db*"):
        assert secret.encode() not in f.read_bytes(), f
    parts = sqlite3.connect(state / "state.db").execute("SELECT parts FROM fingerprints").fetchone()[0]
    assert "env:TOKEN" in parts


def test_provenance_records_the_commit_and_a_dirty_tree(tmp_path, write_pipeline):
    path = write_pipeline("version: 1\nname: prov\nsteps:\n  a: {run: 'true'}\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "add", "pipeline.yaml"], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "commit", "-qm", "init"], check=True)
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert run_flowctl("run", str(path), cwd=tmp_path).returncode == 0
    path.write_text(path.read_text() + "# edited\n")
    assert run_flowctl("run", str(path), cwd=tmp_path).returncode == 0
    runs = json.loads(run_flowctl("runs", "--json", cwd=tmp_path).stdout)
    edited, clean = (r["provenance"] for r in runs)
    assert clean["git_commit"] == edited["git_commit"] == head
    assert (clean["git_dirty"], edited["git_dirty"]) == (False, True)
    assert clean["pipeline_sha256"] != edited["pipeline_sha256"]
