"""Chaos reaches foreach items (issue 17: items are attempts too): each item attempt's fault is a
hash of (seed, step, item key, its attempt, fault), so the same seed injects the same faults at
-j1 and -j8; ``max`` holds per item; injected item failures count toward retries and the
tolerated failures; ``chaos check`` and ``chaos soak`` read items. Real runs, real state."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_flowctl


def fan(folder: Path, items: int = 40, retries: int = 3, extra: str = "", run: str = 'echo "$FLOWCTL_ITEM" >> seen.txt') -> None:
    keys = ", ".join(f"i{n:02d}" for n in range(items))
    (folder / "pipeline.yaml").write_text(
        "version: 1\nname: fanned\nsteps:\n"
        f"  pre: {{run: 'true', retries: {retries}, retry_delay: 0}}\n"
        f"  each:\n    needs: [pre]\n    run: {json.dumps(run)}\n    retries: {retries}\n    retry_delay: 0\n"
        f"    foreach: {{items: [{keys}]{extra}}}\n"
        f"  post: {{run: 'true', needs: [each], retries: {retries}, retry_delay: 0}}\n",
        encoding="utf-8",
    )


def item_faults(folder: Path, run_id: str | None = None) -> list[tuple[str, str, str]]:
    """(step, item key, "ATTEMPT:FAULT,...") of every item chaos touched, in key order."""
    with sqlite3.connect(folder / ".flowctl" / "state.db") as conn:
        sql = "SELECT step, key, injected FROM items WHERE injected != ''"
        args: tuple[str, ...] = ()
        if run_id is not None:
            sql += " AND run_id = ?"
            args = (run_id,)
        return [tuple(r) for r in conn.execute(sql + " ORDER BY step, key", args)]  # type: ignore[misc]


def faults_set(rows: list[tuple[str, str, str]]) -> set[tuple[str, str, int, str]]:
    out = set()
    for step, key, text in rows:
        for part in text.split(","):
            attempt, _, fault = part.partition(":")
            out.add((step, key, int(attempt), fault))
    return out


SPEC = "fail=0.25,kill=0.1,delay=5ms@0.2,seed=77"


def test_same_seed_injects_the_same_item_faults_twice_and_at_j1_and_j8(tmp_path: Path) -> None:
    lists = []
    for name, jobs in (("one", "1"), ("again", "1"), ("wide", "8")):
        folder = tmp_path / name
        folder.mkdir()
        fan(folder)
        got = run_flowctl("run", "pipeline.yaml", "--no-progress", "--chaos", SPEC, "-j", jobs, cwd=folder, timeout=120)
        assert got.returncode == 0, got.stdout + got.stderr
        lists.append(item_faults(folder))
    assert {f for *_, f in faults_set(lists[0])} >= {"fail", "kill", "delay"}, "the seed must exercise items"
    assert json.dumps(lists[0]).encode() == json.dumps(lists[1]).encode()
    assert faults_set(lists[0]) == faults_set(lists[2])
    # pre and post are plain steps: their faults are attempts', never items'
    assert {step for step, *_ in lists[0]} == {"each"}


def test_max_caps_each_item_and_injected_failures_count_toward_its_retries(tmp_path: Path) -> None:
    fan(tmp_path, items=6, retries=2)
    got = run_flowctl("run", "pipeline.yaml", "--no-progress", "--chaos", "fail=1,max=1,steps=each", cwd=tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    assert item_faults(tmp_path) == [("each", f'"i{n:02d}"', "1:fail") for n in range(6)]
    with sqlite3.connect(tmp_path / ".flowctl" / "state.db") as conn:
        assert set(conn.execute("SELECT status, attempts FROM items")) == {("succeeded", 2)}
    assert sorted((tmp_path / "seen.txt").read_text().split()) == [f"i{n:02d}" for n in range(6)]  # fail never runs it
    checked = run_flowctl("chaos", "check", "--json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout
    assert json.loads(checked.stdout)["injected"] == {"fail": 6}
    assert "items: fail 6" in run_flowctl("show", "latest", cwd=tmp_path).stdout  # its INJECTED column
    metrics = json.loads(run_flowctl("show", "latest", "--json", cwd=tmp_path).stdout)["metrics"]
    assert metrics["injected_faults"] == 6 and metrics["failed_attempts"] == 0  # counted, and no real error
    got = run_flowctl("run", "pipeline.yaml", "--no-progress", "--chaos", "fail=1,max=1,steps=each", "--metrics-file",
                      "m.prom", cwd=tmp_path)
    assert 'flowctl_last_run_injected_faults{chaos="1",pipeline="fanned"} 6.0' in (tmp_path / "m.prom").read_text()


def test_plain_lines_mark_the_faults_injected_into_items_as_they_mark_steps(tmp_path: Path) -> None:
    """Trial 17: a cron log showed a step's injected fault on its START line and nothing at all
    for an item's; items now get a START line when a fault is injected into them, and a FAIL
    line for every failed attempt (a line for every item would drown the log)."""
    fan(tmp_path, items=3, retries=1)
    got = run_flowctl("run", "pipeline.yaml", "--no-progress", "--chaos", "fail=1:rc=4,max=1,steps=each", cwd=tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    lines = [line.split(" ", 2)[2] for line in got.stdout.splitlines() if " each " in line]
    for key in ('"i00"', '"i01"', '"i02"'):
        assert f"START each item {key} (attempt 1, chaos: fail)" in lines, got.stdout
        assert f"FAIL each item {key} exit 4 (attempt 1, no output)" in lines, got.stdout
        assert not any(line.startswith(f"START each item {key} (attempt 2") for line in lines)  # not injected
    batched = tmp_path / "batched"
    batched.mkdir()
    fan(batched, items=4, retries=0, extra=", batch: {size: 2}, tolerated_failure: {percent: 100}")
    got = run_flowctl("run", "pipeline.yaml", "--no-progress", "--chaos", "fail=1,steps=each", cwd=batched)
    assert got.returncode == 0, got.stdout + got.stderr
    assert 'START each batch 1 ("i00", "i01") (attempt 1, chaos: fail)' in got.stdout
    assert 'FAIL each batch 2 ("i02", "i03") exit 1 (attempt 1, dead-lettered, no output)' in got.stdout


def test_items_dead_lettered_by_injected_faults_converge_and_real_ones_do_not(tmp_path: Path) -> None:
    # fail=1 without a cap: every attempt of every item fails, past the tolerance: injected, so converged
    fan(tmp_path, items=4, retries=1)
    got = run_flowctl("run", "pipeline.yaml", "--no-progress", "--chaos", "fail=1,steps=each", cwd=tmp_path)
    assert got.returncode == 1 and "exceeded-tolerated-failures" in got.stdout, got.stdout + got.stderr
    checked = run_flowctl("chaos", "check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout
    assert "ok   converged" in checked.stdout
    # an item that fails by itself (delay is no excuse) is a real failure
    fan(tmp_path, items=4, retries=1, run='[ "$FLOWCTL_ITEM" != i02 ]')
    got = run_flowctl("run", "pipeline.yaml", "--no-progress", "--chaos", "delay=1ms@1", cwd=tmp_path)
    assert got.returncode == 1
    checked = run_flowctl("chaos", "check", cwd=tmp_path)
    assert checked.returncode == 1
    assert "item '\"i02\"' of step each was dead-lettered for real: attempt 2 (exit 1) was not injected" in checked.stdout


STREAMED = (
    "version: 1\nname: streamed\nsteps:\n"
    "  list: {{run: {list_run}}}\n"
    "  each:\n    needs: [list]\n    run: 'echo \"$FLOWCTL_ITEM\" >> seen.txt'\n"
    "    foreach: {{items_from: {{step: list, stream: true}}}}\n"
)


def test_a_streamed_step_whose_producer_failed_through_chaos_converged(tmp_path: Path) -> None:
    # trial 17: the consumer of a stream fails (it is not skipped) when its producer fails; the
    # check judged that failure "for real" although only an injected fault explained it
    list_run = json.dumps("for i in 1 2 3; do echo $i; done")
    (tmp_path / "pipeline.yaml").write_text(STREAMED.format(list_run=list_run), encoding="utf-8")
    got = run_flowctl("run", "pipeline.yaml", "--no-progress", "--chaos", "fail=1,steps=list", cwd=tmp_path)
    assert got.returncode == 1 and "whose output gives the items, failed" in got.stdout, got.stdout + got.stderr
    assert "Also failed: each (step list, whose output gives the items, failed: exit 1" in got.stdout
    assert "after 0 attempts" not in got.stdout  # it made none of its own: its items would have
    checked = run_flowctl("chaos", "check", "--json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout
    assert json.loads(checked.stdout)["violations"] == []
    # a producer failing by itself is one violation, at the producer, not a second at its consumer
    (tmp_path / "pipeline.yaml").write_text(STREAMED.format(list_run=json.dumps("echo 1; exit 3")), encoding="utf-8")
    got = run_flowctl("run", "pipeline.yaml", "--no-progress", "--chaos", "delay=1ms@1", cwd=tmp_path)
    assert got.returncode == 1, got.stdout + got.stderr
    checked = run_flowctl("chaos", "check", "--json", cwd=tmp_path)
    assert checked.returncode == 1
    assert [(v["check"], v["step"]) for v in json.loads(checked.stdout)["violations"]] == [("converged", "list")]


def test_an_item_that_killed_the_runner_is_not_killed_for_again_and_the_resume_converges(tmp_path: Path) -> None:
    fan(tmp_path, items=5, retries=0)
    first = run_flowctl("run", "pipeline.yaml", "--no-progress", "-j", "1", "--chaos", "kill-runner=1,max=1,steps=each",
                        cwd=tmp_path)
    assert first.returncode == -9
    assert item_faults(tmp_path) == [("each", '"i00"', "1:kill-runner")]
    resumed = run_flowctl("run", "pipeline.yaml", "--no-progress", "--resume", "-j", "1", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len(item_faults(tmp_path)) == 1  # the spent kill carried over: no second self-kill
    checked = run_flowctl("chaos", "check", "--json", cwd=tmp_path)
    doc = json.loads(checked.stdout)
    assert checked.returncode == 0 and doc["runner_kills"] == 1 and doc["injected"] == {"kill-runner": 1}, checked.stdout


@pytest.mark.timeout(300)
def test_soak_over_a_foreach_pipeline_passes(tmp_path: Path) -> None:
    fan(tmp_path, items=12, retries=3, extra=", tolerated_failure: {percent: 100}")
    got = run_flowctl("chaos", "soak", "pipeline.yaml", "--runs", "5", "--chaos", "fail=0.2,kill=0.1,kill-runner=0.05",
                      "-j", "4", "--json", cwd=tmp_path, timeout=300)
    assert got.returncode == 0, got.stdout + got.stderr
    doc = json.loads(got.stdout)
    assert doc["passed"] == 5
    assert sum(sum(r["check"]["injected"].values()) for r in doc["results"]) >= 10
    assert sum(r["check"]["runner_kills"] for r in doc["results"]) >= 1


def test_items_dead_lettered_by_chaos_are_in_the_queue_but_not_in_the_error_rate(tmp_path: Path) -> None:
    fan(tmp_path, items=4, retries=1, extra=", tolerated_failure: {count: 4}")
    got = run_flowctl("run", "pipeline.yaml", "--no-progress", "--chaos", "fail=1,steps=each", "--metrics-file", "m.prom",
                      cwd=tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    doc = json.loads(run_flowctl("show", "latest", "--json", cwd=tmp_path).stdout)
    figures = doc["metrics"]["items"]["each"]
    assert figures["dead_letter"] == 4 and figures["error_rate"] == 0.0  # in the queue, no real error
    assert doc["items"]["each"]["error_rate"] == 0.0
    prom = (tmp_path / "m.prom").read_text()  # live figures, as the stored ones
    assert [line for line in prom.splitlines() if line.startswith("flowctl_last_run_item_error_rate{")] == \
        ['flowctl_last_run_item_error_rate{chaos="1",pipeline="fanned",step="each"} 0.0']
