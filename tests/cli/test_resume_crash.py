"""A resume never repeats finished work (issue 12), proved at every commit boundary.

Real ``flowctl run`` processes are killed with SIGKILL by the store's test-only failpoint
(``FLOWCTL_FAILPOINTS``) right before or right after each of their state commits in turn, then
resumed until done. Steps append ``start``/``end`` lines to a ledger, so every execution is
counted, including those of steps that kept running after their runner died.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections import Counter
from pathlib import Path

from tests.conftest import run_flowctl


def step(sid: str, needs: list[str], *, extra: str = "") -> str:
    lines = [f"  {sid}:", f"    run: echo start {sid} >> ledger.txt; {extra}echo end {sid} >> ledger.txt"]
    if needs:
        lines.append(f"    needs: [{', '.join(needs)}]")
    return "\n".join(lines)


def ledger(folder: Path) -> list[tuple[str, str]]:
    path = folder / "ledger.txt"
    if not path.exists():
        return []
    return [tuple(line.split()) for line in path.read_text().splitlines() if line.strip()]  # type: ignore[misc]


def starts(folder: Path) -> Counter[str]:
    return Counter(s for kind, s in ledger(folder) if kind == "start")


def settle(folder: Path) -> None:
    """Steps that outlived their killed runner finish on their own (they take milliseconds)."""
    deadline = time.monotonic() + 20
    while True:
        entries = ledger(folder)
        if Counter(s for k, s in entries if k == "start") == Counter(s for k, s in entries if k == "end"):
            return
        assert time.monotonic() < deadline, "a step left behind by the killed runner never ended"
        time.sleep(0.02)


def recorded(folder: Path) -> tuple[set[str], set[str]]:
    """(steps some run recorded as done well, steps the newest run recorded as running)."""
    path = folder / ".flowctl" / "state.db"
    if not path.exists():
        return set(), set()
    conn = sqlite3.connect(path)
    try:
        done = {r[0] for r in conn.execute(
            "SELECT step FROM steps WHERE status IN ('succeeded', 'reused', 'up to date')")}
        running = {r[0] for r in conn.execute(
            "SELECT step FROM steps WHERE status = 'running' AND run_id = "
            "(SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1)")}
    finally:
        conn.close()
    return done, running


def kill_then_resume(folder: Path, args: list[str], failpoint: str) -> tuple[bool, Counter[str], set[str]]:
    """``flowctl run pipeline.yaml ARGS`` with ``failpoint``; when it killed the runner, resume
    until done. Returns (killed,
    how often each step ran after the kill, steps recorded as running at the kill) and checks
    that nothing recorded as done ran again."""
    got = run_flowctl("run", "pipeline.yaml", *args, cwd=folder, env={"FLOWCTL_FAILPOINTS": failpoint})
    if got.returncode != -9:
        assert got.returncode == 0, got.stdout + got.stderr
        return False, Counter(), set()
    settle(folder)
    done, running = recorded(folder)
    before = starts(folder)
    for _ in range(3):
        resumed = run_flowctl("run", "pipeline.yaml", "--resume", *args, cwd=folder)
        if resumed.returncode == 0:
            break
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    again = starts(folder) - before
    ran_twice = {s for s in done if again[s]}
    assert not ran_twice, f"{failpoint}: {sorted(ran_twice)} finished before the kill and ran again"
    return True, again, running


# -- a resume killed early never forgets the reuse -------------------------------------------

RESUMABLE = "\n".join(
    ["version: 1", "name: early", "steps:"]
    + [step(s, n) for s, n in (("a", []), ("b", ["a"]), ("c", []), ("d", ["b", "c"]))]
    + [step("gate", [], extra="test -f go || { echo end gate >> ledger.txt; exit 3; }; "),
       step("e", ["gate"]), step("f", ["e", "d"])]
) + "\n"


def test_a_resume_killed_after_any_commit_never_forgets_what_it_reused(tmp_path):
    """Issue 12: `--resume` committed its run at once and its reuse decisions a turn later; a
    kill in between made the next resume redo every finished step. Kill the resume after each
    of its commits in turn, then resume until done: no step that had finished runs again."""
    folder = tmp_path / "work"  # runs are found by their pipeline file's path: always this one
    folder.mkdir()
    (folder / "pipeline.yaml").write_text(RESUMABLE)
    first = run_flowctl("run", "pipeline.yaml", "--concurrency", "2", cwd=folder)
    assert first.returncode == 1, first.stdout + first.stderr  # gate fails; e and f are skipped
    (folder / "go").touch()
    finished = {"a", "b", "c", "d"}
    assert recorded(folder)[0] == finished
    saved = tmp_path / "saved"
    shutil.copytree(folder, saved)
    n = 0
    while True:
        n += 1
        shutil.rmtree(folder)
        shutil.copytree(saved, folder)
        killed, again, running = kill_then_resume(folder, ["--resume", "--concurrency", "2"], f"state.after-commit=kill@{n}")
        if not killed:
            break
        for s in finished:
            assert starts(folder)[s] == 1, f"kill@{n}: {s} succeeded in the first run and ran again"
        for s, count in again.items():
            assert count == 1 or (count == 2 and s in running), f"kill@{n}: {s} ran {count} times"
        assert n < 40, "the resume never completed"
    assert n > 4, "the resume commits several times: the loop must have covered each"


# -- a kill loses at most what was running ------------------------------------------------------

FANOUT = "\n".join(
    ["version: 1", "name: fanout", "steps:", step("root", [], extra="sleep 0.02; ")]
    + [step(f"w{i}", ["root"], extra="sleep 0.02; ") for i in range(6)]
    + [step("join", [f"w{i}" for i in range(6)])]
) + "\n"


def test_a_kill_at_any_commit_boundary_reruns_at_most_what_was_recorded_running(tmp_path):
    """Issue 12: one kill -9 re-ran up to twice the concurrency (the steps recorded running
    plus those started before the results that freed their slots were saved). With concurrency
    4, kill the runner just before and just after each of its commits in turn, resume: the
    steps that run twice are never more than those recorded as running, and none of them had
    been recorded as finished."""
    worst = 0
    for point in ("state.before-commit", "state.after-commit"):
        n = 0
        while True:
            n += 1
            folder = tmp_path / f"{point}-{n}"
            folder.mkdir()
            (folder / "pipeline.yaml").write_text(FANOUT)
            killed, _again, running = kill_then_resume(
                folder, ["--concurrency", "4"], f"{point}=kill@{n}"
            )
            if not killed:
                break
            total = starts(folder)
            twice = {s for s, c in total.items() if c > 1}
            assert twice <= running, f"{point}@{n}: {sorted(twice - running)} ran twice but were not recorded running"
            assert len(twice) <= 4
            assert set(total) == {"root", "join", *(f"w{i}" for i in range(6))}
            worst = max(worst, len(twice))
            assert n < 60, "the run never completed"
        assert n > 6, f"{point}: a run of 8 steps commits more often than that"
    assert worst >= 1  # the test has teeth: some kill caught a step running
