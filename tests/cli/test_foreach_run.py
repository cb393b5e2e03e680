"""Running ``foreach`` steps end to end (issue 15): real processes, real state, real kills."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import flowctl_env, run_flowctl


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def items_file(tmp_path: Path, n: int) -> None:
    (tmp_path / "items.jsonl").write_text("".join(json.dumps({"id": i}) + "\n" for i in range(n)))


def step_folder(tmp_path: Path, step: str, run: str | None = None) -> Path:
    if run is None:  # the newest run: two runs in one second have ids that do not sort by time
        conn = sqlite3.connect(tmp_path / ".flowctl" / "state.db")
        try:
            run = conn.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
        finally:
            conn.close()
    folder = tmp_path / ".flowctl" / "runs" / str(run)
    return folder / step


def rows(tmp_path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(tmp_path / ".flowctl" / "state.db")
    try:
        return list(conn.execute(sql, args))
    finally:
        conn.close()


def thousand(percent: str) -> str:
    # items 100, 500 and 900 fail on every attempt; the rest succeed
    return f"""version: 1
name: fan
concurrency: 8
steps:
  each:
    foreach:
      items_from: {{file: items.jsonl}}
      key: ${{{{ item.id }}}}
      tolerated_failure: {{percent: {percent}}}
    run: case "${{{{ item.id }}}}" in 100|500|900) echo "bad $FLOWCTL_ITEM" >&2; exit 3;; esac
"""


def test_thousand_items_three_failures_within_one_percent(tmp_path: Path) -> None:
    items_file(tmp_path, 1000)
    done = run_flowctl("run", str(write(tmp_path, thousand("1"))), cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = step_folder(tmp_path, "each")
    results = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    dead = [json.loads(line) for line in (folder / "dead-letter.jsonl").read_text().splitlines()]
    assert len(results) == 997 and {r["status"] for r in results} == {"succeeded"}
    assert sorted(d["key"] for d in dead) == ["100", "500", "900"]
    assert dead[0]["exit_code"] == 3 and dead[0]["item"] == {"id": int(dead[0]["key"])}
    assert any("bad" in line for line in dead[0]["log_tail"])
    assert rows(tmp_path, "SELECT status, count(*) FROM items GROUP BY status ORDER BY status") == [
        ("dead-lettered", 3), ("succeeded", 997)]
    assert "997 of 1000 items succeeded, 3 dead-lettered" in done.stdout


def test_thousand_items_three_failures_over_a_tenth_of_a_percent(tmp_path: Path) -> None:
    items_file(tmp_path, 1000)
    done = run_flowctl("run", str(write(tmp_path, thousand("0.1"))), cwd=tmp_path, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    (reason,) = rows(tmp_path, "SELECT reason FROM steps WHERE step = 'each'")
    assert str(reason[0]).startswith("exceeded-tolerated-failures")
    assert "exceeded-tolerated-failures" in done.stdout


def batched(tmp_path: Path, items: int, batch: str, run: str) -> Path:
    """A pipeline batching ``items`` items of ``items.jsonl``; a ``markers`` folder to write in."""
    items_file(tmp_path, items)
    (tmp_path / "markers").mkdir()
    return write(tmp_path, "version: 1\nname: fan\nsteps:\n  each:\n"
                           f"    foreach: {{items_from: {{file: items.jsonl}}, batch: {batch}}}\n    run: {run}\n")


def test_a_batch_of_fifty_over_a_thousand_items_is_twenty_processes(tmp_path: Path) -> None:
    pipeline = batched(tmp_path, 1000, "{size: 50}", 'wc -l < "${{ batch.file }}" > "markers/$$.$FLOWCTL_BATCH_SIZE"')
    done = run_flowctl("run", str(pipeline), cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    markers = list((tmp_path / "markers").iterdir())
    assert len(markers) == 20
    assert {m.name.split(".")[1] for m in markers} == {"50"}
    assert {m.read_text().strip() for m in markers} == {"50"}
    assert len((step_folder(tmp_path, "each") / "results.jsonl").read_text().splitlines()) == 1000


def test_max_bytes_closes_a_batch_early(tmp_path: Path) -> None:
    pipeline = batched(tmp_path, 100, "{size: 50, max_bytes: 100}", 'cp "${{ batch.file }}" "markers/$$"')
    assert run_flowctl("run", str(pipeline), cwd=tmp_path).returncode == 0
    sizes = [m.stat().st_size for m in (tmp_path / "markers").iterdir()]
    # the batch files hold canonical JSON: {"id":0} and a newline is 9 bytes, {"id":10} 10
    assert max(sizes) <= 100 and sum(sizes) == 10 * 9 + 90 * 10 and len(sizes) == 10


def test_zero_items_succeed_and_what_needs_them_runs(tmp_path: Path) -> None:
    (tmp_path / "items.jsonl").write_text("")
    pipeline = write(tmp_path, """version: 1
name: fan
steps:
  each:
    foreach: {items_from: {file: items.jsonl}}
    run: exit 1
  after:
    needs: [each]
    run: echo after
""")
    done = run_flowctl("run", str(pipeline), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 of 0 items succeeded" in done.stdout


def test_items_are_retried_one_by_one(tmp_path: Path) -> None:
    pipeline = write(tmp_path, """version: 1
name: fan
steps:
  each:
    foreach: {items: [a, b, c]}
    retries: 2
    retry_delay: 0
    run: echo x >> "count.${{ item }}"; test "${{ item }}" != b || test $(wc -l < count.b) -ge 3
""")
    done = run_flowctl("run", str(pipeline), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert rows(tmp_path, "SELECT key, attempts, status FROM items ORDER BY key") == [
        ('"a"', 1, "succeeded"), ('"b"', 3, "succeeded"), ('"c"', 1, "succeeded")]  # keys: canonical JSON
    assert (tmp_path / "count.a").read_text() == "x\n"


def test_a_bad_line_fails_the_step_before_any_item_starts(tmp_path: Path) -> None:
    (tmp_path / "items.jsonl").write_text('{"id": 1}\n{"id": 2\n')
    pipeline = write(tmp_path, """version: 1
name: fan
steps:
  each:
    foreach: {items_from: {file: items.jsonl}, key: "${{ item.id }}"}
    run: touch started
""")
    done = run_flowctl("run", str(pipeline), cwd=tmp_path)
    assert done.returncode == 1
    assert "items file items.jsonl, line 2: not JSON" in done.stdout
    assert not (tmp_path / "started").exists()


def test_fail_fast_cancels_the_running_items(tmp_path: Path) -> None:
    pipeline = write(tmp_path, f"""version: 1
name: fan
concurrency: 4
steps:
  each:
    foreach: {{items: [bad, s1, s2, s3, s4, s5, s6, s7], key: "${{{{ item }}}}", fail_fast: true}}
    run: if [ "${{{{ item }}}}" = bad ]; then until [ -e started.s3 ]; do sleep 0.01; done; exit 1; fi; touch "started.${{{{ item }}}}"; {sys.executable} -c "import time; time.sleep(30)"
""")
    done = run_flowctl("run", str(pipeline), cwd=tmp_path, timeout=60)
    assert done.returncode == 1
    statuses = dict(rows(tmp_path, "SELECT key, status FROM items"))  # type: ignore[arg-type]
    assert statuses["bad"] == "dead-lettered"
    assert {statuses[k] for k in ("s1", "s2", "s3")} == {"cancelled"}
    assert not (tmp_path / "started.s7").exists()


def test_an_item_value_never_runs_as_code(tmp_path: Path) -> None:
    pipeline = write(tmp_path, """version: 1
name: fan
steps:
  each:
    foreach: {items: ['$(touch pwned)', '"; touch pwned2; "', {f: '`touch pwned3`'}]}
    run: echo "${{ item }}" ${{ item }} >> seen.txt
""")
    assert run_flowctl("run", str(pipeline), cwd=tmp_path).returncode == 0
    assert not any((tmp_path / n).exists() for n in ("pwned", "pwned2", "pwned3"))
    assert "$(touch pwned) $(touch pwned)" in (tmp_path / "seen.txt").read_text()


def test_kill_nine_half_way_then_resume_runs_only_the_rest(tmp_path: Path) -> None:
    items_file(tmp_path, 200)
    (tmp_path / "markers").mkdir()
    pipeline = write(tmp_path, """version: 1
name: fan
concurrency: 4
steps:
  each:
    foreach: {items_from: {file: items.jsonl}, key: "${{ item.id }}"}
    run: touch "markers/${{ item.id }}.$$"; sleep 0.02
  after:
    needs: [each]
    run: wc -l < "${{ needs.each.results }}" > after.txt
""")
    proc = subprocess.Popen([sys.executable, "-m", "flowctl", "run", str(pipeline)], cwd=tmp_path,
                            env=flowctl_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(os.listdir(tmp_path / "markers")) < 100:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = {str(k) for (k,) in rows(tmp_path, "SELECT key FROM items WHERE status = 'succeeded'")}
    assert 50 < len(first) < 200
    done = run_flowctl("run", str(pipeline), "--resume", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = Counter(m.name.split(".")[0] for m in (tmp_path / "markers").iterdir())
    assert set(runs) == {str(i) for i in range(200)}
    assert [k for k in first if runs[k] != 1] == []  # no succeeded item ran twice
    assert (tmp_path / "after.txt").read_text().strip() == "200"
    # the killed run's items that were running are recorded as interrupted, none as running
    assert rows(tmp_path, "SELECT count(*) FROM items WHERE status = 'running'") == [(0,)]


@pytest.mark.parametrize("stop", ["fixed"])
def test_resume_after_fixing_runs_only_the_dead_items(tmp_path: Path, stop: str) -> None:
    pipeline = write(tmp_path, """version: 1
name: fan
concurrency: 1
steps:
  each:
    foreach: {items: [a, c, b], key: "${{ item }}"}
    run: echo "${{ item }}" >> ran.txt; test "${{ item }}" != b || test -e fixed
""")
    assert run_flowctl("run", str(pipeline), cwd=tmp_path).returncode == 1
    (tmp_path / stop).touch()
    done = run_flowctl("run", str(pipeline), "--resume", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted((tmp_path / "ran.txt").read_text().split()) == ["a", "b", "b", "c"]
    results = [json.loads(x) for x in (step_folder(tmp_path, "each") / "results.jsonl").read_text().splitlines()]
    assert sorted((r["key"], r["status"]) for r in results) == [("a", "reused"), ("b", "succeeded"), ("c", "reused")]


def test_show_aggregates_items_and_logs_prints_one_items_log(tmp_path: Path) -> None:
    pipeline = write(tmp_path, """version: 1
name: fan
steps:
  each:
    foreach:
      items: [{p: in/a.png}, {p: in/b.png}, {p: in/c.png}]
      key: ${{ item.p }}
      tolerated_failure: {count: 1}
    run: echo "converting ${{ item.p }}"; test "${{ item.p }}" != in/b.png
""")
    assert run_flowctl("run", str(pipeline), cwd=tmp_path).returncode == 0
    shown = run_flowctl("show", "latest", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "Items of each: 1 dead-lettered, 2 succeeded" in shown.stdout
    assert "error rate 33.3%" in shown.stdout and "p95" in shown.stdout
    assert "dead-lettered: in/b.png after 1 attempt(s), exit 1" in shown.stdout
    data = json.loads(run_flowctl("show", "latest", "--json", cwd=tmp_path).stdout)
    assert data["items"]["each"]["counts"] == {"succeeded": 2, "dead-lettered": 1}
    log = run_flowctl("logs", "latest", "each", "--item", "in/b.png", cwd=tmp_path)
    assert log.returncode == 0 and log.stdout == "converting in/b.png\n"
    # keys holding "/" get a folder of their own, escaped
    assert (step_folder(tmp_path, "each") / "items" / "in%2Fb.png" / "1.log").is_file()
    wrong = run_flowctl("logs", "latest", "each", "--item", "in/d.png", cwd=tmp_path)
    assert wrong.returncode == 2 and "has no item with key 'in/d.png'" in wrong.stderr


def test_a_new_run_skips_items_only_when_the_step_declares_outputs_and_nothing_changed(tmp_path: Path) -> None:
    body = """version: 1
name: fan
concurrency: 1
steps:
  each:
    foreach: {{items: [a, c, b], key: "${{{{ item }}}}"}}
    run: echo "${{{{ item }}}}" >> ran.txt; echo x > out.txt; test "${{{{ item }}}}" != b || test -e fixed{extra}
{outputs}"""
    pipeline = write(tmp_path, body.format(extra="", outputs="    outputs: [out.txt]\n"))
    assert run_flowctl("run", str(pipeline), cwd=tmp_path).returncode == 1
    (tmp_path / "fixed").touch()
    assert run_flowctl("run", str(pipeline), cwd=tmp_path).returncode == 0
    assert (tmp_path / "ran.txt").read_text().split() == ["a", "c", "b", "b"]
    # a changed command changes the step's fingerprint: every item runs again
    write(tmp_path, body.format(extra="; true", outputs="    outputs: [out.txt]\n"))
    (tmp_path / "out.txt").unlink()
    assert run_flowctl("run", str(pipeline), cwd=tmp_path).returncode == 0
    assert (tmp_path / "ran.txt").read_text().split() == ["a", "c", "b", "b", "a", "c", "b"]
    # without outputs a new run runs every item (as a plain step runs again)
    write(tmp_path, body.format(extra="", outputs=""))
    assert run_flowctl("run", str(pipeline), cwd=tmp_path).returncode == 0
    assert (tmp_path / "ran.txt").read_text().split()[7:] == ["a", "c", "b"]


def test_the_prometheus_textfile_has_the_items_and_the_dead_letter_depth(tmp_path: Path) -> None:
    pipeline = write(tmp_path, """version: 1
name: fan
steps:
  each:
    foreach: {items: [1, 2, 3, 4], tolerated_failure: {percent: 50}}
    run: test "${{ item }}" -lt 3
""")
    prom = tmp_path / "metrics.prom"
    done = run_flowctl("run", str(pipeline), "--metrics-file", str(prom), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    text = prom.read_text()
    assert 'flowctl_dead_letter_items{pipeline="fan",step="each"} 2.0' in text
    assert 'flowctl_last_run_items{pipeline="fan",status="succeeded",step="each"} 2.0' in text
    assert 'flowctl_last_run_item_error_rate{pipeline="fan",step="each"} 0.5' in text
    assert 'flowctl_last_run_item_duration_seconds{percentile="95",pipeline="fan",step="each"}' in text
    assert 'flowctl_last_run_items_per_second{pipeline="fan",step="each"}' in text


def test_the_dead_letter_queue_lists_shows_and_drops_with_secrets_masked(tmp_path: Path) -> None:
    pipeline = write(tmp_path, """version: 1
name: fan
env: {TOKEN: "${{ env.TOKEN }}"}
secret_env: [TOKEN]
steps:
  each:
    foreach:
      items: [{id: ok}, {id: bad, note: "uses hunter2-secret"}]
      key: ${{ item.id }}
      tolerated_failure: {count: 1}
    run: echo "token $TOKEN for ${{ item.id }}"; test "${{ item.id }}" = ok
""")
    done = run_flowctl("run", str(pipeline), cwd=tmp_path, env={"TOKEN": "hunter2-secret"})
    assert done.returncode == 0, done.stdout + done.stderr
    listed = run_flowctl("dlq", "list", cwd=tmp_path)
    assert listed.returncode == 0 and "bad" in listed.stdout and "dead-lettered" in listed.stdout
    data = json.loads(run_flowctl("dlq", "list", "--json", cwd=tmp_path).stdout)
    assert [i["key"] for i in data["items"]] == ["bad"]
    shown = run_flowctl("dlq", "show", "bad", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "last exit code: 1" in shown.stdout and "token *** for bad" in shown.stdout
    everything = shown.stdout + (step_folder(tmp_path, "each") / "dead-letter.jsonl").read_text()
    everything += "".join(str(r) for r in rows(tmp_path, "SELECT * FROM items"))
    assert "hunter2" not in everything
    assert run_flowctl("dlq", "show", "bda", cwd=tmp_path).returncode == 2
    assert run_flowctl("dlq", "drop", "bad", "--reason", "known bad input", cwd=tmp_path).returncode == 0
    assert "is empty" in run_flowctl("dlq", "list", cwd=tmp_path).stdout
    assert rows(tmp_path, "SELECT status, reason LIKE '%known bad input' FROM items WHERE key = 'bad'") == [("dropped", 1)]


def test_dlq_replay_runs_only_dead_items_and_poisons_after_max_replays(tmp_path: Path) -> None:
    pipeline = write(tmp_path, """version: 1
name: fan
concurrency: 1
steps:
  each:
    foreach:
      items: [a, b, c, poison]
      key: ${{ item }}
      tolerated_failure: {count: 2}
    run: echo "${{ item }}" >> ran.txt; case "${{ item }}" in b) test -e fixed;; poison) false;; esac
  after:
    needs: [each]
    run: cp "${{ needs.each.results }}" after.jsonl
""")
    assert run_flowctl("run", str(pipeline), cwd=tmp_path).returncode == 0
    first = json.loads(run_flowctl("dlq", "list", "--json", cwd=tmp_path).stdout)
    assert sorted(i["key"] for i in first["items"]) == ["b", "poison"]
    (tmp_path / "fixed").touch()
    done = run_flowctl("dlq", "replay", "--key", "b", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "ran.txt").read_text().split() == ["a", "b", "c", "poison", "b"]  # a and c untouched
    assert rows(tmp_path, "SELECT run_id FROM runs") == [(first["run_id"],)]  # the same run, going on
    assert [i["key"] for i in json.loads(run_flowctl("dlq", "list", "--json", cwd=tmp_path).stdout)["items"]] == ["poison"]
    results = [json.loads(x) for x in (tmp_path / "after.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in results) == ["a", "b", "c"]
    assert {r["key"]: r["attempts"] for r in results} == {"a": 1, "b": 2, "c": 1}  # b's attempts go on
    assert run_flowctl("logs", first["run_id"], "each", "--item", "b", "--attempt", "1", cwd=tmp_path).returncode == 0
    for n in (1, 2, 3):  # it fails again each time: the replay says so, exit 1 (trial 15)
        again = run_flowctl("dlq", "replay", "--all", cwd=tmp_path)
        assert again.returncode == 1 and "1 of 1 replayed item(s) failed again" in again.stderr, again.stderr
        (row,) = rows(tmp_path, "SELECT replays FROM items WHERE key = 'poison'")
        assert row == (n,)
    refused = run_flowctl("dlq", "replay", "--all", cwd=tmp_path)
    assert refused.returncode == 1 and "poisoned: poison was replayed 3 time(s)" in refused.stderr, refused.stderr
    assert "poisoned" in run_flowctl("dlq", "list", cwd=tmp_path).stdout
    assert (tmp_path / "ran.txt").read_text().split().count("poison") == 4


@pytest.mark.parametrize(("split", "code", "dead"), [("true", 0, 1), ("false", 1, 5)])
def test_a_failed_batch_is_split_to_find_the_bad_item(tmp_path: Path, split: str, code: int, dead: int) -> None:
    # A batch command reads its batch file, also once its batch is split into one-item batches
    # (trial of main: the split items got an empty batch file and good items were dead-lettered).
    (tmp_path / "check.sh").write_text('test -s "$1" && ! grep -q \'"id":3}\' "$1"\n')
    pipeline = batched(tmp_path, 10, f"{{size: 5, split_on_failure: {split}}}, tolerated_failure: {{count: 1}}",
                       'sh check.sh "${{ batch.file }}"')
    done = run_flowctl("run", str(pipeline), cwd=tmp_path)
    assert done.returncode == code, done.stdout + done.stderr
    assert rows(tmp_path, "SELECT count(*) FROM items WHERE status = 'dead-lettered'") == [(dead,)]
    if split == "true":
        assert rows(tmp_path, "SELECT key FROM items WHERE status = 'dead-lettered'") == [('{"id":3}',)]
        assert len((step_folder(tmp_path, "each") / "results.jsonl").read_text().splitlines()) == 9


def test_show_and_the_live_run_count_a_foreach_step_alike(tmp_path: Path) -> None:
    """A foreach step runs items, not attempts of its own: ``show`` still counts it as executed,
    with its duration and its place on the critical path, as the live run's figures do (trial
    of main: ``show`` said "0 completed")."""
    (tmp_path / "p.yaml").write_text(
        "version: 1\nname: fe\nsteps:\n"
        "  f:\n    run: 'sleep 0.05'\n    foreach: {items: [1, 2, 3]}\n"
        "  g:\n    needs: [f]\n    run: 'true'\n",
        encoding="utf-8",
    )
    live = run_flowctl("run", "p.yaml", "--no-progress", "-v", cwd=tmp_path)
    assert live.returncode == 0, live.stdout + live.stderr
    shown = run_flowctl("show", "latest", "--json", cwd=tmp_path)
    metrics = json.loads(shown.stdout)["metrics"]
    assert metrics["steps"]["completed"] == 2 and metrics["critical_path"] == ["f", "g"]
    assert metrics["step_duration"]["f"] >= 0.05
    assert "(2 completed in" in live.stdout


def test_dlq_with_a_step_the_run_does_not_have_is_a_usage_error(tmp_path: Path) -> None:
    """Not "the queue is empty" for a misspelt step (trial of main)."""
    pipeline = write(tmp_path, "version: 1\nname: fan\nsteps:\n  each:\n"
                               "    foreach: {items: [1, 2]}\n    run: test \"${{ item }}\" != 2\n")
    assert run_flowctl("run", str(pipeline), cwd=tmp_path).returncode == 1
    assert "1 item(s)" in run_flowctl("dlq", "list", "--step", "each", cwd=tmp_path).stdout
    wrong = run_flowctl("dlq", "list", "--step", "eahc", cwd=tmp_path)
    assert wrong.returncode == 2 and "has no step 'eahc'" in wrong.stderr and "did you mean 'each'?" in wrong.stderr
