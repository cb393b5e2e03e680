"""``flowctl chaos soak|check|replay`` end to end (issue 17): real runs that kill themselves,
real resumes, the invariants over real state, a non-idempotent step caught by its ledger."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import flowctl_env, run_flowctl


def write(folder: Path, steps: dict[str, str], retries: int = 3, chain: bool = True) -> Path:
    lines = ["version: 1", "name: soaked", "steps:"]
    names = list(steps)
    for i, (sid, cmd) in enumerate(steps.items()):
        needs = f", needs: [{names[(i - 1) // 2]}]" if chain and i else ""
        lines.append(f"  {sid}: {{run: {json.dumps(cmd)}, retries: {retries}, retry_delay: 0{needs}}}")
    path = folder / "pipeline.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.timeout(600)
def test_soak_20_seeds_of_a_50_step_pipeline_under_fail_kill_and_kill_runner_all_pass(tmp_path: Path) -> None:
    write(tmp_path, {f"s{i:02d}": "true" for i in range(50)})
    got = run_flowctl("chaos", "soak", "pipeline.yaml", "--runs", "20", "--chaos", "fail=0.2,kill=0.1,kill-runner=0.05",
                      "-j", "4", "--json", cwd=tmp_path, timeout=600)
    assert got.returncode == 0, got.stdout + got.stderr
    doc = json.loads(got.stdout)
    assert doc["ok"] and doc["passed"] == 20 and [r["seed"] for r in doc["results"]] == list(range(20))
    kills = sum(r["check"]["runner_kills"] for r in doc["results"])
    faults = sum(sum(r["check"]["injected"].values()) for r in doc["results"])
    assert kills >= 10 and faults >= 200  # the soak really resumed after self-kills, under real faults
    assert all(r["runs"] == r["check"]["runner_kills"] + 1 for r in doc["results"])
    assert not (tmp_path / ".flowctl").exists()  # each seed had its own scratch state


def test_kill_runner_once_resumes_once_and_the_check_passes(tmp_path: Path) -> None:
    write(tmp_path, {f"s{i}": "true" for i in range(6)})
    got = run_flowctl("chaos", "soak", "pipeline.yaml", "--runs", "1", "--chaos", "kill-runner=1,max=1", cwd=tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "seed 0: ok — 2 run(s), runner killed 1 time(s), 1 fault(s) injected" in got.stdout
    assert "PASS 1/1 seeds" in got.stdout


def test_a_step_that_is_not_idempotent_is_caught_with_the_command_that_reproduces_it(tmp_path: Path) -> None:
    effect = """echo '{"effect": "loaded 2026-12-01"}' >> "$FLOWCTL_LEDGER\""""
    write(tmp_path, {"extract": "true", "load": effect}, chain=True)
    got = run_flowctl("chaos", "soak", "pipeline.yaml", "--runs", "3", "--seed-from", "5", "--chaos",
                      "kill=1,max=1,steps=load", cwd=tmp_path)
    assert got.returncode == 1, got.stdout + got.stderr
    assert "FAIL at seed 5" in got.stdout
    assert "effect 'loaded 2026-12-01' recorded 2 times" in got.stdout
    command = "flowctl chaos soak pipeline.yaml --runs 1 --seed-from 5 --chaos kill=1,max=1,steps=load,seed=5"
    assert f"Reproduce: {command}" in got.stdout
    kept = Path(got.stdout.split("Kept: ")[1].strip())
    assert (kept / "state" / "state.db").exists()
    # The same step made idempotent (it checks before doing it again) passes.
    write(tmp_path, {"extract": "true", "load": f"[ -f loaded ] || {{ {effect}; touch loaded; }}"})
    got = run_flowctl("chaos", "soak", "pipeline.yaml", "--runs", "3", "--chaos", "kill=1,max=1,steps=load", cwd=tmp_path)
    assert got.returncode == 0 and "PASS 3/3 seeds" in got.stdout, got.stdout + got.stderr


def test_check_reads_a_run_and_its_resumes_and_replay_injects_the_same_faults(tmp_path: Path) -> None:
    write(tmp_path, {f"s{i}": "true" for i in range(8)})
    first = run_flowctl("run", "pipeline.yaml", "--no-progress", "--chaos", "fail=0.3,kill=0.2,kill-runner=1,max=1,seed=9",
                        cwd=tmp_path)
    assert first.returncode == -9
    unfinished = run_flowctl("chaos", "check", "--json", cwd=tmp_path)
    assert unfinished.returncode == 1
    assert [v["check"] for v in json.loads(unfinished.stdout)["violations"]] == ["finished"]
    assert run_flowctl("run", "pipeline.yaml", "--resume", "--no-progress", cwd=tmp_path).returncode == 0
    checked = run_flowctl("chaos", "check", "latest", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout
    assert "2 run(s)" in checked.stdout and checked.stdout.rstrip().endswith("PASS")

    def faults(run_id: str) -> list[tuple[str, int, str]]:
        with sqlite3.connect(tmp_path / ".flowctl" / "state.db") as conn:
            return [tuple(r) for r in conn.execute(  # type: ignore[misc]
                "SELECT step, attempt, injected FROM attempts WHERE run_id = ? AND injected != '' ORDER BY step, attempt",
                (run_id,))]

    runs = json.loads(run_flowctl("runs", "--json", cwd=tmp_path).stdout)
    original = runs[-1]["run_id"]
    replayed = run_flowctl("chaos", "replay", original, cwd=tmp_path)
    assert replayed.returncode == 137 and replayed.stderr.count("continue with") == 1  # it killed itself again, as the original
    newest = json.loads(run_flowctl("runs", "--json", cwd=tmp_path).stdout)[0]["run_id"]
    assert faults(newest) == faults(original)
    assert run_flowctl("run", "pipeline.yaml", "--resume", "--no-progress", cwd=tmp_path).returncode == 0
    # a replay ends as the run it starts ends: 0 for a run that succeeds, 1 for one that fails
    write(tmp_path, {f"s{i}": "true" for i in range(3)}, retries=0)
    assert run_flowctl("run", "pipeline.yaml", "--no-progress", "--chaos", "fail=1,steps=s2", cwd=tmp_path).returncode == 1
    failed = json.loads(run_flowctl("runs", "--json", cwd=tmp_path).stdout)[0]["run_id"]
    assert run_flowctl("chaos", "replay", failed, cwd=tmp_path).returncode == 1
    assert run_flowctl("run", "pipeline.yaml", "--no-progress", "--chaos", "delay=1ms@1", cwd=tmp_path).returncode == 0
    passed = json.loads(run_flowctl("runs", "--json", cwd=tmp_path).stdout)[0]["run_id"]
    assert run_flowctl("chaos", "replay", passed, cwd=tmp_path).returncode == 0


def test_check_catches_a_real_failure(tmp_path: Path) -> None:
    write(tmp_path, {"a": "true", "b": "exit 3"}, retries=0)
    assert run_flowctl("run", "pipeline.yaml", "--no-progress", "--chaos", "delay=1ms@1", cwd=tmp_path).returncode == 1
    got = run_flowctl("chaos", "check", cwd=tmp_path)
    assert got.returncode == 1
    assert "step b failed for real: attempt 1 (exit 3) was not injected" in got.stdout


def test_check_counts_a_foreach_step_as_done_when_its_items_succeeded(tmp_path: Path) -> None:
    """A step that needs a foreach step starts after its items succeeded: ``order`` holds (the
    foreach step's own success is its items', not an attempt of its own; trial of main)."""
    (tmp_path / "p.yaml").write_text(
        "version: 1\nname: fan\nsteps:\n"
        "  f:\n    run: 'true'\n    foreach: {items: [1, 2, 3]}\n"
        "  g:\n    needs: [f]\n    run: 'true'\n",
        encoding="utf-8",
    )
    ran = run_flowctl("run", "p.yaml", "--no-progress", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    checked = run_flowctl("chaos", "check", "latest", "--json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "order" not in json.dumps([v for v in json.loads(checked.stdout).get("violations", [])])


def test_the_check_report_lists_every_check_once_in_order_and_names_runner_kills_only_when_asked(tmp_path: Path) -> None:
    """Trial of main: "runner killed 0 time(s)" for a run that never asked for it, and a skipped
    check printed as ok with its reason at the end."""
    write(tmp_path, {"a": "true", "b": "true"})
    assert run_flowctl("run", "pipeline.yaml", "--no-progress", "--chaos", "fail=0.5,seed=1", cwd=tmp_path).returncode == 0
    (tmp_path / "pipeline.yaml").unlink()  # its needs are unknown now: order cannot be checked
    got = run_flowctl("chaos", "check", "--state-dir", ".flowctl", cwd=tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    lines = got.stdout.splitlines()
    assert "runner killed" not in got.stdout
    checks = [line.split()[1].rstrip(":") for line in lines if line.startswith(("  ok ", "  FAIL ", "  skip "))]
    assert checks == ["finished", "converged", "order", "no-rerun", "duplicates", "retries", "no-leftovers", "effects"]
    assert "  skip order: the pipeline file it ran is gone or invalid, so its needs are unknown" in lines
    assert lines[-1] == "PASS"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_soak_says_which_seeds_passed_cleans_up_and_exits_130(tmp_path: Path, signum: int) -> None:
    """Trial of main: Ctrl-C during a soak was silent and left /tmp/flowctl-soak-* behind."""
    marks = tmp_path / "marks"
    marks.mkdir()
    # seed 0 passes; seed 1's step waits (it sees the seed in its ledger's path) until signalled
    write(tmp_path, {"a": f'case "$FLOWCTL_LEDGER" in *seed-1/*) echo $$ > {marks}/pid; exec sleep 60;; esac'})
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowctl", "chaos", "soak", "pipeline.yaml", "--runs", "5", "--chaos", "delay=1ms@1"],
        cwd=tmp_path, env=flowctl_env({"TMPDIR": str(scratch)}), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not (marks / "pid").exists() or not (marks / "pid").read_text().strip():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    step = int((marks / "pid").read_text())
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "seed 0: ok — 1 run(s), 1 fault(s) injected" in out  # no "runner killed 0 time(s)": it never asked
    assert "chaos soak interrupted at seed 1: 1/5 seed(s) passed before it (seeds: 0)" in err
    assert "--runs 4 --seed-from 1" in err and "Traceback" not in err
    assert list(scratch.iterdir()) == []  # its scratch folders are removed
    with pytest.raises(ProcessLookupError):
        os.kill(step, 0)  # the step of the run under way was stopped
