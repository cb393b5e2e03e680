"""What a new user broke in foreach and ``dlq replay`` (trial 15): real processes, real state.

Markers: each item's command touches ``markers/<item>.<pid>``, so a count over 1 proves an
item ran again."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.cli.test_foreach_run import rows, step_folder, write
from tests.conftest import run_flowctl

# With -j 1: item 1 succeeds, item 2 fails (until "fixed" exists) and exceeds the tolerance of
# none, so item 3 never starts (cancelled). A replay runs at the pipeline's concurrency (2).
THREE = """version: 1
name: three
concurrency: 2
steps:
  work:
    foreach: {items: [1, 2, 3]}
    run: touch "markers/${{ item }}.$$"; test "${{ item }}" != 2 || test -e fixed
  after:
    needs: [work]
    run: touch "markers/after.$$"
"""


def _three(tmp_path: Path) -> Path:
    (tmp_path / "markers").mkdir()
    return write(tmp_path, THREE)


def _markers(tmp_path: Path) -> Counter[str]:
    return Counter(m.name.split(".")[0] for m in (tmp_path / "markers").iterdir())


def test_an_item_cancelled_then_replayed_is_never_run_again_by_the_next_replay(tmp_path: Path) -> None:
    pipeline = _three(tmp_path)
    first = run_flowctl("run", str(pipeline), "-j", "1", cwd=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    assert _markers(tmp_path) == Counter({"1": 1, "2": 1})
    # a cancelled item is recorded with its value, not null
    assert rows(tmp_path, "SELECT item, status FROM items WHERE key = '3'") == [("3", "cancelled")]
    again = run_flowctl("dlq", "replay", "--all", cwd=tmp_path)  # 2 fails again; 3 runs, as a resume would
    assert again.returncode == 1, again.stdout + again.stderr
    assert _markers(tmp_path) == Counter({"1": 1, "2": 2, "3": 1})
    (tmp_path / "fixed").touch()
    done = run_flowctl("dlq", "replay", "--all", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # only 2 ran: 3 had succeeded in the first replay
    assert _markers(tmp_path) == Counter({"1": 1, "2": 3, "3": 1, "after": 1})
    assert rows(tmp_path, "SELECT key, item, status FROM items ORDER BY key") == [
        ("1", "1", "succeeded"), ("2", "2", "succeeded"), ("3", "3", "succeeded")]
    (run_id,) = rows(tmp_path, "SELECT run_id FROM runs")[0]
    results = [json.loads(x) for x in (step_folder(tmp_path, "work", str(run_id)) / "results.jsonl").read_text().splitlines()]
    assert sorted(r["item"] for r in results) == [1, 2, 3]


def test_a_streamed_step_whose_producer_prints_nothing_lasts_no_negative_time(tmp_path: Path) -> None:
    pipeline = write(tmp_path, """version: 1
name: empty
steps:
  list:
    run: "true"
  work:
    needs: [list]
    foreach: {items_from: {step: list, stream: true}}
    run: echo "${{ item }}"
""")
    done = run_flowctl("run", str(pipeline), "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 of 0 items succeeded" in done.stdout
    assert " OK work -" not in done.stdout, done.stdout
    ((duration,),) = rows(tmp_path, "SELECT duration FROM steps WHERE step = 'work'")
    assert 0 <= float(str(duration)) < 60
    shown = json.loads(run_flowctl("show", "latest", "--json", cwd=tmp_path).stdout)
    assert all(s["duration"] is None or s["duration"] >= 0 for s in shown["steps"]), shown["steps"]


def test_a_foreach_step_interrupted_while_its_items_ran_says_so(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import flowctl_env

    (tmp_path / "markers").mkdir()
    pipeline = write(tmp_path, """version: 1
name: stop
concurrency: 2
steps:
  work:
    foreach: {items: [1, 2, 3, 4, 5, 6]}
    run: touch "markers/${{ item }}.$$"; test "${{ item }}" = 1 || sleep 60
""")
    proc = subprocess.Popen([sys.executable, "-m", "flowctl", "run", str(pipeline), "--no-progress"], cwd=tmp_path,
                            env=flowctl_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while len(_markers(tmp_path)) < 2 or not rows(tmp_path, "SELECT 1 FROM items WHERE status = 'succeeded'"):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGINT)  # Ctrl-C: the runner only (its items have sessions of their own)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    ((reason,),) = rows(tmp_path, "SELECT reason FROM steps WHERE step = 'work'")
    assert str(reason).startswith("interrupted while it ran: 1 of 6 items succeeded"), reason
    assert "before it started" not in out, out
