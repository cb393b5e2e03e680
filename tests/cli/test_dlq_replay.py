"""``flowctl dlq replay`` goes on in the replayed run itself (issue 15): real processes, real
state, a real ``kill -9`` of a replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.cli.test_foreach_run import rows, step_folder, write
from tests.conftest import flowctl_env, run_flowctl

# Items 47, 48 and 49 (the last: none is cancelled) fail until the file "fixed" exists; with "slow" they then take long.
FIFTY = """version: 1
name: fan
concurrency: 4
steps:
  each:
    foreach: {items_from: {file: items.jsonl}, key: "${{ item.id }}", tolerated_failure: {count: 2}}
    run: >-
      touch "markers/${{ item.id }}.$$";
      case "${{ item.id }}" in 47|48|49) test -e fixed || { echo "not fixed: ${{ item.id }}" >&2; exit 4; };
      if test -e slow; then touch started; sleep 60; fi;; esac
  after:
    needs: [each]
    run: wc -l < "${{ needs.each.results }}" > after.txt
"""


def _fifty(tmp_path: Path) -> Path:
    (tmp_path / "items.jsonl").write_text("".join(json.dumps({"id": i}) + "\n" for i in range(50)))
    (tmp_path / "markers").mkdir()
    return write(tmp_path, FIFTY)


def _markers(tmp_path: Path) -> Counter[str]:
    return Counter(m.name.split(".")[0] for m in (tmp_path / "markers").iterdir())


def test_replay_all_after_the_fix_ends_the_same_run_succeeded(tmp_path: Path) -> None:
    pipeline = _fifty(tmp_path)
    first = run_flowctl("run", str(pipeline), cwd=tmp_path, timeout=120)
    assert first.returncode == 1, first.stdout + first.stderr
    ((run_id, status),) = rows(tmp_path, "SELECT run_id, status FROM runs")
    assert status == "failed"
    queue = json.loads(run_flowctl("dlq", "list", "--json", cwd=tmp_path).stdout)["items"]
    assert sorted(i["key"] for i in queue) == ["47", "48", "49"]
    assert sorted(i["error"] for i in queue) == [f"exited with code 4: not fixed: {k}" for k in (47, 48, 49)]
    (tmp_path / "fixed").touch()
    done = run_flowctl("dlq", "replay", "--all", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"in run {run_id}" in done.stdout
    # the same run, now succeeded: no new run recorded, the step and what needs it ended well
    assert rows(tmp_path, "SELECT run_id, status FROM runs") == [(run_id, "succeeded")]
    assert dict(rows(tmp_path, "SELECT step, status FROM steps")) == {"each": "succeeded", "after": "succeeded"}
    assert (tmp_path / "after.txt").read_text().strip() == "50"
    assert "is empty" in run_flowctl("dlq", "list", cwd=tmp_path).stdout
    # only the three ran again; the 47 that had succeeded were left alone (rows and all)
    ran = _markers(tmp_path)
    assert {k for k, n in ran.items() if n != 1} == {"47", "48", "49"}
    assert rows(tmp_path, "SELECT status, count(*) FROM items GROUP BY status") == [("succeeded", 50)]
    # each item records the definition it ran with: the replayed ones the step's current one
    (current,) = rows(tmp_path, "SELECT fingerprint FROM steps WHERE step = 'each'")
    assert rows(tmp_path, "SELECT DISTINCT definition FROM items WHERE key IN ('47', '48', '49')") == [current]
    listed = run_flowctl("runs", cwd=tmp_path)
    assert run_id in listed.stdout and "succeeded" in listed.stdout, listed.stdout
    shown = json.loads(run_flowctl("show", run_id, "--json", cwd=tmp_path).stdout)
    assert shown["run"]["status"] == "succeeded"
    # the replayed item's earlier attempt keeps its log; the replay's is attempt 2
    assert "not fixed: 48" in run_flowctl("logs", run_id, "each", "--item", "48", "--attempt", "1", cwd=tmp_path).stdout
    assert rows(tmp_path, "SELECT attempts, replays FROM items WHERE key = '48'") == [(2, 1)]
    results = [json.loads(x) for x in (step_folder(tmp_path, "each", run_id) / "results.jsonl").read_text().splitlines()]
    assert len(results) == 50 and all(r["attempts"] >= 1 and r["exit_code"] == 0 for r in results)


def test_a_replay_killed_nine_leaves_its_items_replayable(tmp_path: Path) -> None:
    pipeline = _fifty(tmp_path)
    assert run_flowctl("run", str(pipeline), cwd=tmp_path, timeout=120).returncode == 1
    ((run_id,),) = rows(tmp_path, "SELECT run_id FROM runs")
    (tmp_path / "fixed").touch()
    (tmp_path / "slow").touch()
    proc = subprocess.Popen([sys.executable, "-m", "flowctl", "dlq", "replay", "--all"], cwd=tmp_path,
                            env=flowctl_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its items' processes
    proc.wait()
    (tmp_path / "slow").unlink()
    still = json.loads(run_flowctl("dlq", "list", "--json", cwd=tmp_path).stdout)
    assert sorted(i["key"] for i in still["items"]) == ["47", "48", "49"], still
    again = run_flowctl("dlq", "replay", "--all", cwd=tmp_path, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert rows(tmp_path, "SELECT run_id, status FROM runs") == [(run_id, "succeeded")]
    assert (tmp_path / "after.txt").read_text().strip() == "50"
    assert {k for k, n in _markers(tmp_path).items() if n != 1} <= {"47", "48", "49"}

