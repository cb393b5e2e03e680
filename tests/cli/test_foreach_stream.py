"""Items from a step's output, whole and streamed (issue 15): real processes, real state, real kills.

The producers never sleep for a fixed time to let something happen: they print, then wait (with
a deadline) for a file an item makes, so "the first item started before the producer ended" is
something the producer itself depends on.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from flowctl.state.invariants import check_run
from tests.cli.test_foreach_run import rows, step_folder, write
from tests.conftest import flowctl_env, run_flowctl

# A shell loop that waits (at most 30s) for the file $1: the producers' only way to wait.
WAIT = 'n=0; until [ -e "$1" ] || [ $n -ge 3000 ]; do sleep 0.01; n=$((n+1)); done'


def waiter(tmp_path: Path) -> None:
    (tmp_path / "wait.sh").write_text(WAIT + "\n")


def succeeded(tmp_path: Path) -> int:
    if not (tmp_path / ".flowctl" / "state.db").exists():
        return 0
    return int(rows(tmp_path, "SELECT count(*) FROM items WHERE status = 'succeeded'")[0][0])  # type: ignore[call-overload]


def test_the_first_item_starts_before_the_producer_exits(tmp_path: Path) -> None:
    waiter(tmp_path)
    pipeline = write(tmp_path, """version: 1
name: s
concurrency: 4
steps:
  list:
    run: |
      echo '{"id": 1}'; echo '{"id": 2}'
      echo "listing" >&2
      sh wait.sh first.done
      echo '{"id": 3}'
  each:
    needs: [list]
    foreach: {items_from: {step: list, stream: true}, key: "${{ item.id }}"}
    run: echo "${{ item.id }}" >> seen.txt; touch first.done
  after:
    needs: [each]
    run: wc -l < "${{ needs.each.results }}" > after.txt
""")
    done = run_flowctl("run", str(pipeline), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted((tmp_path / "seen.txt").read_text().split()) == ["1", "2", "3"]
    (first,) = rows(tmp_path, "SELECT min(started_at) FROM items WHERE step = 'each'")
    (producer_end,) = rows(tmp_path, "SELECT finished_at FROM attempts WHERE step = 'list'")
    assert float(first[0]) < float(producer_end[0])  # type: ignore[arg-type]
    folder = step_folder(tmp_path, "list")
    # its stdout is recorded apart; its stderr stays in its log
    assert (folder / "stdout.jsonl").read_text() == '{"id": 1}\n{"id": 2}\n{"id": 3}\n'
    assert (folder / "1.log").read_text() == "listing\n"
    assert (tmp_path / "after.txt").read_text().strip() == "3"
    # chaos check's order invariant accepts the streaming edge (items began before list ended)
    check = run_flowctl("chaos", "check", "latest", "--json", cwd=tmp_path)
    assert [v for v in json.loads(check.stdout)["violations"] if v["check"] == "order"] == [], check.stdout
    # ... and only that edge: under the ordinary rule the first item was too early
    needs = {"each": ("list",), "after": ("each",)}
    strict = check_run(tmp_path / ".flowctl", "latest", needs, alive=list)
    assert [v.message for v in strict.violations if v.check == "order"] == [
        "step each item started before list, which it needs, had succeeded"]
    relaxed = check_run(tmp_path / ".flowctl", "latest", needs, streams={"each": "list"}, alive=list)
    assert [v for v in relaxed.violations if v.check == "order"] == []


def test_a_line_that_is_not_json_fails_the_producer_naming_the_line(tmp_path: Path) -> None:
    waiter(tmp_path)
    pipeline = write(tmp_path, """version: 1
name: s
steps:
  list:
    run: |
      echo '{"id": 1}'
      sh wait.sh first.done
      echo '{"id": 2}'; echo 'not json'; echo '{"id": 3}'
  each:
    needs: [list]
    foreach: {items_from: {step: list, stream: true}, key: "${{ item.id }}"}
    run: echo "${{ item.id }}" >> seen.txt; touch first.done
""")
    done = run_flowctl("run", str(pipeline), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    reasons = dict(rows(tmp_path, "SELECT step, status || ': ' || reason FROM steps"))  # type: ignore[arg-type]
    assert str(reasons["list"]).startswith("failed: the output of step list, line 3: not JSON")
    assert "whose output gives the items, failed: the output of step list, line 3" in str(reasons["each"])
    assert "Root failure: list" in done.stdout
    seen = (tmp_path / "seen.txt").read_text().split()
    # Item 2 may have started if its line was read before the bad one arrived; nothing after
    # the bad line ever runs.
    assert seen[0] == "1" and "3" not in seen and set(seen) <= {"1", "2"}


def test_a_producer_failing_mid_stream_stops_new_items_and_fails_the_step(tmp_path: Path) -> None:
    # Item 1 holds the run's second slot until the producer is gone (reaped), so items 2 and 3
    # are still waiting for a slot when the producer fails: they must never start.
    waiter(tmp_path)
    pipeline = write(tmp_path, """version: 1
name: s
concurrency: 2
steps:
  list:
    run: |
      echo $$ > producer.pid
      echo '{"id": 1}'; echo '{"id": 2}'; echo '{"id": 3}'
      sh wait.sh first.started
      exit 3
  each:
    needs: [list]
    foreach: {items_from: {step: list, stream: true}, key: "${{ item.id }}", tolerated_failure: {count: 5}}
    run: |
      touch "ran.${{ item.id }}" first.started
      while kill -0 "$(cat producer.pid)" 2>/dev/null; do sleep 0.01; done
""")
    done = run_flowctl("run", str(pipeline), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (tmp_path / "ran.1").exists()
    assert not (tmp_path / "ran.2").exists() and not (tmp_path / "ran.3").exists()
    (reason,) = rows(tmp_path, "SELECT status, reason FROM steps WHERE step = 'each'")
    assert reason[0] == "failed" and "step list, whose output gives the items, failed: exit 3" in str(reason[1])
    assert dict(rows(tmp_path, "SELECT key, status FROM items")) == {  # type: ignore[arg-type]
        "1": "succeeded", "2": "cancelled", "3": "cancelled"}


def test_a_duplicate_key_mid_stream_fails_the_consumer_naming_the_lines(tmp_path: Path) -> None:
    pipeline = write(tmp_path, """version: 1
name: s
steps:
  list:
    run: |
      printf '{"id": 1}\\n{"id": 2}\\n{"id": 1, "again": true}\\n'
  each:
    needs: [list]
    foreach: {items_from: {step: list, stream: true}, key: "${{ item.id }}", max_items: 10}
    run: "true"
""")
    done = run_flowctl("run", str(pipeline), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    reasons = dict(rows(tmp_path, "SELECT step, status || ': ' || reason FROM steps"))  # type: ignore[arg-type]
    assert reasons["list"] == "succeeded: "
    assert "the output of step list, lines 1 and 3 have the same key '1'" in str(reasons["each"])


def test_kill_nine_mid_stream_then_resume_runs_no_succeeded_item_twice(tmp_path: Path) -> None:
    waiter(tmp_path)
    (tmp_path / "markers").mkdir()
    pipeline = write(tmp_path, """version: 1
name: s
concurrency: 3
steps:
  list:
    run: |
      for i in 1 2 3 4 5 6 7 8 9 10; do echo "{\\"id\\": $i}"; done
      sh wait.sh go
      for i in 11 12 13 14 15 16 17 18 19 20; do echo "{\\"id\\": $i}"; done
  each:
    needs: [list]
    foreach: {items_from: {step: list, stream: true}, key: "${{ item.id }}"}
    run: touch "markers/${{ item.id }}.$$"
""")
    proc = subprocess.Popen([sys.executable, "-m", "flowctl", "run", str(pipeline)], cwd=tmp_path,
                            env=flowctl_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    # every item printed so far succeeded (committed), while the producer still waits for "go"
    while succeeded(tmp_path) < 10:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert rows(tmp_path, "SELECT status FROM steps WHERE step = 'list'") == [("running",)]
    (tmp_path / "go").touch()
    done = run_flowctl("run", str(pipeline), "--resume", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = Counter(m.name.split(".")[0] for m in (tmp_path / "markers").iterdir())
    assert set(runs) == {str(i) for i in range(1, 21)}
    assert [k for k, n in runs.items() if n != 1] == []  # no item ran twice
    results = [json.loads(x) for x in (step_folder(tmp_path, "each") / "results.jsonl").read_text().splitlines()]
    assert Counter(r["status"] for r in results) == {"reused": 10, "succeeded": 10}


def test_a_step_source_is_read_whole_and_a_resume_rereads_the_recorded_output(tmp_path: Path) -> None:
    pipeline = write(tmp_path, """version: 1
name: s
steps:
  list:
    run: |
      touch "producer.$$"
      printf '"a"\\n"c"\\n\\n"b"\\n'
  each:
    needs: [list]
    foreach: {items_from: {step: list}, key: "${{ item }}"}
    run: echo "${{ item }}" >> ran.txt; test "${{ item }}" != b || test -e fixed
""")
    assert run_flowctl("run", str(pipeline), cwd=tmp_path).returncode == 1
    assert sorted((tmp_path / "ran.txt").read_text().split()) == ["a", "b", "c"]
    (tmp_path / "fixed").touch()
    done = run_flowctl("run", str(pipeline), "--resume", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list(tmp_path.glob("producer.*"))) == 1  # the producer ran once: its output was re-read
    assert sorted((tmp_path / "ran.txt").read_text().split()) == ["a", "b", "b", "c"]
    (status,) = rows(tmp_path, "SELECT status FROM steps WHERE step = 'list' AND run_id = "
                               "(SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1)")
    assert status == ("reused",)


def test_a_bad_line_in_a_whole_output_fails_the_consumer_before_any_item(tmp_path: Path) -> None:
    pipeline = write(tmp_path, """version: 1
name: s
steps:
  list:
    run: |
      printf '{"id": 1}\\n{"id": 2\\n'
  each:
    needs: [list]
    foreach: {items_from: {step: list}}
    run: touch started
""")
    done = run_flowctl("run", str(pipeline), cwd=tmp_path)
    assert done.returncode == 1
    assert "the output of step list, line 2: not JSON" in done.stdout
    assert not (tmp_path / "started").exists()


def test_a_streamed_step_counts_failures_as_they_happen(tmp_path: Path) -> None:
    # count: 1 is exceeded by the second failure, while the producer still prints: no item
    # after it starts (concurrency 1 keeps the order)
    pipeline = write(tmp_path, """version: 1
name: s
concurrency: 2
steps:
  list:
    run: for i in 1 2 3 4 5 6; do echo $i; done; sh wait.sh never
  each:
    needs: [list]
    foreach: {items_from: {step: list, stream: true}, max_concurrent: 1, tolerated_failure: {count: 1}}
    run: echo "${{ item }}" >> ran.txt; test "${{ item }}" -gt 2
""")
    waiter(tmp_path)
    done = run_flowctl("run", str(pipeline), "--fail-fast", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (tmp_path / "ran.txt").read_text().split() == ["1", "2"]
    (reason,) = rows(tmp_path, "SELECT reason FROM steps WHERE step = 'each'")
    assert str(reason[0]).startswith("exceeded-tolerated-failures")


def test_an_interrupted_stream_is_cancelled_not_succeeded_and_resume_finishes_it(tmp_path: Path) -> None:
    # Interrupted while it waits for the producer's next line (no item running or waiting), the
    # step has not seen every item: it must not end succeeded (a resume would skip the rest).
    waiter(tmp_path)
    (tmp_path / "markers").mkdir()
    pipeline = write(tmp_path, """version: 1
name: s
steps:
  list:
    run: |
      echo 1; echo 2
      sh wait.sh go
      echo 3
  each:
    needs: [list]
    foreach: {items_from: {step: list, stream: true}}
    run: touch "markers/${{ item }}.$$"
""")
    proc = subprocess.Popen([sys.executable, "-m", "flowctl", "run", str(pipeline)], cwd=tmp_path,
                            env=flowctl_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while succeeded(tmp_path) < 2:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert dict(rows(tmp_path, "SELECT step, status FROM steps")) == {"list": "cancelled", "each": "cancelled"}
    (tmp_path / "go").touch()
    done = run_flowctl("run", str(pipeline), "--resume", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = Counter(m.name.split(".")[0] for m in (tmp_path / "markers").iterdir())
    assert runs == {"1": 1, "2": 1, "3": 1}
