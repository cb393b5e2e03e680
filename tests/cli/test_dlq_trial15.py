"""What a new user broke in foreach and ``dlq replay`` (trial 15): real processes, real state.

Markers: each item's command touches ``markers/<item>.<pid>``, so a count over 1 proves an
item ran again."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.cli.test_dlq_replay import _markers
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


# Every item may fail (percent: 100): the run succeeds whatever its items do. An item fails
# until the file ok/<item> exists; "hold" makes item 4 wait for the file "go" (a lock holder).
TOLERANT = """version: 1
name: tolerant
steps:
  work:
    foreach: {items: [1, 2, 3, 4], tolerated_failure: {percent: 100}}
    run: >-
      touch "markers/${{ item }}.$$";
      if test -e hold && test "${{ item }}" = 4; then touch holding; until test -e go; do sleep 0.01; done; fi;
      test -e "ok/${{ item }}"
"""


def _tolerant(tmp_path: Path) -> Path:
    (tmp_path / "markers").mkdir()
    (tmp_path / "ok").mkdir()
    pipeline = write(tmp_path, TOLERANT)
    first = run_flowctl("run", str(pipeline), cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    return pipeline


def _queue(tmp_path: Path) -> dict[str, str]:
    listed = json.loads(run_flowctl("dlq", "list", "--json", cwd=tmp_path).stdout)
    return {i["key"]: i["status"] for i in listed["items"]}


def test_a_replay_whose_items_fail_again_exits_one_though_the_run_succeeds(tmp_path: Path) -> None:
    _tolerant(tmp_path)
    (tmp_path / "ok" / "1").touch()
    again = run_flowctl("dlq", "replay", "--all", cwd=tmp_path)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "3 of 4 replayed item(s) failed again and are back in the dead-letter queue: 2, 3, 4" in again.stderr
    assert rows(tmp_path, "SELECT status FROM runs") == [("succeeded",)]
    for n in "234":
        (tmp_path / "ok" / n).touch()
    done = run_flowctl("dlq", "replay", "--all", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "back in the dead-letter queue" not in done.stderr
    assert _markers(tmp_path) == Counter({"1": 2, "2": 3, "3": 3, "4": 3})


def test_a_poisoned_item_does_not_hold_back_the_rest_of_the_queue(tmp_path: Path) -> None:
    _tolerant(tmp_path)
    for _ in range(2):  # item 1 replayed twice: at --max-replays 2 it is poisoned
        assert run_flowctl("dlq", "replay", "--key", "1", cwd=tmp_path).returncode == 1
    for n in "234":
        (tmp_path / "ok" / n).touch()
    replayed = run_flowctl("dlq", "replay", "--all", "--max-replays", "2", cwd=tmp_path)
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr  # one was refused
    assert "poisoned: 1 was replayed 2 time(s), --max-replays is 2: refused" in replayed.stderr
    assert _queue(tmp_path) == {"1": "poisoned"}
    assert _markers(tmp_path) == Counter({"1": 3, "2": 2, "3": 2, "4": 2})
    # the same limit refuses it again; a higher one lets it through
    assert run_flowctl("dlq", "replay", "--key", "1", "--max-replays", "2", cwd=tmp_path).returncode == 1
    assert _markers(tmp_path)["1"] == 3
    (tmp_path / "ok" / "1").touch()
    done = run_flowctl("dlq", "replay", "--key", "1", "--max-replays", "5", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _queue(tmp_path) == {} and _markers(tmp_path)["1"] == 4


def test_a_replay_waits_for_the_run_holding_the_lock_and_writes_the_metrics(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from tests.conftest import flowctl_env

    pipeline = _tolerant(tmp_path)
    for n in "123":
        (tmp_path / "ok" / n).touch()
    (tmp_path / "hold").touch()
    holder = subprocess.Popen([sys.executable, "-m", "flowctl", "run", str(pipeline), "--force"], cwd=tmp_path,
                              env=flowctl_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (tmp_path / "holding").exists():
        assert time.monotonic() < deadline and holder.poll() is None
        time.sleep(0.01)
    refused = run_flowctl("dlq", "replay", "--all", "--run", "latest~1", cwd=tmp_path)
    assert refused.returncode == 75, refused.stdout + refused.stderr
    assert "--wait" in refused.stderr
    prom = tmp_path / "dlq.prom"
    waiting = subprocess.Popen([sys.executable, "-m", "flowctl", "dlq", "replay", "--all", "--run", "latest~1",
                                "--wait", "--metrics-file", str(prom)], cwd=tmp_path,
                               env=flowctl_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert waiting.stdout is not None
    seen = []
    for line in waiting.stdout:  # it says it waits, then the holder may end
        seen.append(line)
        if "waiting for" in line:
            break
    else:
        raise AssertionError("".join(seen))
    (tmp_path / "ok" / "4").touch()
    (tmp_path / "hold").unlink()
    (tmp_path / "go").touch()
    assert holder.wait(timeout=60) == 0
    rest, _ = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, "".join(seen) + rest
    assert 'flowctl_dead_letter_items{pipeline="tolerant",step="work"} 0' in prom.read_text()


def test_a_run_that_dead_letters_items_within_its_tolerance_points_at_the_queue(tmp_path: Path) -> None:
    pipeline = _tolerant(tmp_path)
    again = run_flowctl("run", str(pipeline), "--force", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    (run_id,) = rows(tmp_path, "SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")[0]
    assert (f"Dead letters: 4 item(s) of work: flowctl dlq list --run {run_id} "
            f"(after a fix: flowctl dlq replay --run {run_id} --all)") in again.stdout
    for n in "1234":
        (tmp_path / "ok" / n).touch()
    done = run_flowctl("dlq", "replay", "--all", cwd=tmp_path)
    assert done.returncode == 0 and "Dead letters" not in done.stdout, done.stdout + done.stderr


def test_an_item_too_large_for_the_environment_is_dead_lettered_with_a_hint(tmp_path: Path) -> None:
    big = {"id": 1, "blob": "x" * 200_000}  # over Linux's 128 KiB for one variable
    (tmp_path / "items.jsonl").write_text(json.dumps(big) + "\n" + json.dumps({"id": 2}) + "\n")
    pipeline = write(tmp_path, """version: 1
name: big
steps:
  work:
    foreach: {items_from: {file: items.jsonl}, key: "${{ item.id }}", tolerated_failure: {count: 1}}
    run: echo "$FLOWCTL_ITEM_KEY"
""")
    done = run_flowctl("run", str(pipeline), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    shown = run_flowctl("dlq", "show", "1", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "too large to start (Argument list too long): variable FLOWCTL_ITEM holds 195 KiB" in shown.stdout
    assert "Traceback" not in shown.stdout + shown.stderr
    assert len(shown.stdout) < 5000 and "(195 KiB in all; --json shows it whole)" in shown.stdout  # not 200 KB of x
    whole = json.loads(run_flowctl("dlq", "show", "1", "--json", cwd=tmp_path).stdout)
    assert whole["item"] == big


def test_a_replay_says_what_it_runs_in_its_own_words(tmp_path: Path) -> None:
    (tmp_path / "ok").mkdir()
    pipeline = write(tmp_path, """version: 1
name: words
steps:
  work:
    foreach: {items: [1, 2], tolerated_failure: {count: 1}}
    run: test -e "ok/${{ item }}" || test "${{ item }}" = 1
  after:
    needs: [work]
    run: "true"
""")
    assert run_flowctl("run", str(pipeline), cwd=tmp_path).returncode == 0  # item 2 dead-lettered, after ran
    (tmp_path / "ok" / "2").touch()
    done = run_flowctl("dlq", "replay", "--all", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run work: its dead-lettered items are replayed" in done.stdout
    assert "run after: it needs work, whose items are replayed" in done.stdout
    assert "--force-step" not in done.stdout
    assert "START after (attempt 2/2)" in done.stdout, done.stdout


def test_dlq_show_says_when_chaos_made_the_failures(tmp_path: Path) -> None:
    pipeline = write(tmp_path, """version: 1
name: chaotic
steps:
  each:
    foreach: {items: [1, 2, 3], tolerated_failure: {percent: 100}}
    retries: 1
    run: test "${{ item }}" != 3
""")
    got = run_flowctl("run", str(pipeline), "--no-progress", "--chaos", "fail=1,max=2,steps=each", cwd=tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    shown = run_flowctl("dlq", "show", "1", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert ("  injected by --chaos: attempt 1: fail, attempt 2: fail (every failed attempt was injected; "
            "replayed without --chaos it should succeed)") in shown.stdout, shown.stdout
    assert json.loads(run_flowctl("dlq", "show", "1", "--json", cwd=tmp_path).stdout)["injected"] == [[1, "fail"], [2, "fail"]]
    # item 3's attempts 1-2 were injected too; replayed without chaos it fails for real
    run_flowctl("dlq", "replay", "--key", "3", cwd=tmp_path)
    real = run_flowctl("dlq", "show", "3", cwd=tmp_path)
    assert "injected by --chaos: attempt 1: fail, attempt 2: fail (other failures were real)" in real.stdout, real.stdout


def test_items_from_a_misspelt_step_suggests_the_step_not_adding_it_to_needs(tmp_path: Path) -> None:
    pipeline = write(tmp_path, """version: 1
name: typo
steps:
  list: {run: "true"}
  work:
    needs: [list]
    foreach: {items_from: {step: lsit}}
    run: echo "${{ item }}"
""")
    got = run_flowctl("validate", str(pipeline), cwd=tmp_path)
    assert got.returncode == 1, got.stdout + got.stderr
    out = got.stdout + got.stderr
    assert ":7:34: error: items come from step 'lsit', which is not a step in this pipeline" in out, out
    assert "hint: did you mean 'list'?" in out and "add 'lsit' to `needs`" not in out


def test_streamed_items_held_for_an_unfilled_batch_are_cancelled_not_lost(tmp_path: Path) -> None:
    (tmp_path / "produce.py").write_text(
        "import json, os, time\n"
        "for i in range(7):\n    print(json.dumps({'id': i}), flush=True)\n"
        "deadline = time.monotonic() + 30\n"
        "while not os.path.exists('started') and time.monotonic() < deadline:\n    time.sleep(0.01)\n"
        "print('not json', flush=True)\n")
    pipeline = write(tmp_path, """version: 1
name: held
steps:
  list:
    run: python3 produce.py
  work:
    needs: [list]
    foreach: {items_from: {step: list, stream: true}, key: "${{ item.id }}", batch: {size: 3}}
    run: touch started; cat "${{ batch.file }}"
""")
    got = run_flowctl("run", str(pipeline), "--no-progress", cwd=tmp_path)
    assert got.returncode == 1, got.stdout + got.stderr
    # items 0-5 filled two batches; item 6 waited for a third that never filled: cancelled
    assert rows(tmp_path, "SELECT status FROM items WHERE key = '6'") == [("cancelled",)]
    assert rows(tmp_path, "SELECT count(*) FROM items") == [(7,)]
    ((reason,),) = rows(tmp_path, "SELECT reason FROM steps WHERE step = 'work'")
    assert "of 7 items succeeded" in str(reason) and "cancelled" in str(reason), reason


def test_the_failure_log_of_a_foreach_step_is_its_dead_lettered_items(tmp_path: Path) -> None:
    pipeline = write(tmp_path, """version: 1
name: faillog
steps:
  work:
    foreach: {items: [a/b, c]}
    run: echo "hello ${{ item }}"; test "${{ item }}" = c
""")
    got = run_flowctl("run", str(pipeline), "--no-progress", cwd=tmp_path)
    assert got.returncode == 1
    (run_id,) = rows(tmp_path, "SELECT run_id FROM runs")[0]
    assert f"Failure log: flowctl logs {run_id} work" in got.stdout
    for args in (("logs", str(run_id), "work"), ("logs", "latest")):  # as the summary says, and bare
        shown = run_flowctl(*args, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout == "hello a/b\n"
        assert 'is a foreach step; its dead-lettered item "a/b"' in shown.stderr
    # a foreach step with no dead letter: each item has its own log, and the command says how
    (tmp_path / "ok.yaml").write_text(pipeline.read_text().replace("faillog", "fine").replace('; test "${{ item }}" = c', ""))
    assert run_flowctl("run", "ok.yaml", cwd=tmp_path).returncode == 0
    fine = run_flowctl("logs", "latest", "work", cwd=tmp_path)
    assert fine.returncode == 2 and "each of its items has a log of its own" in fine.stderr, fine.stderr
    assert "--item KEY" in fine.stderr


def test_replaying_an_empty_queue_of_a_failed_run_says_how_to_resume_it(tmp_path: Path) -> None:
    pipeline = write(tmp_path, """version: 1
name: broken
steps:
  list:
    run: echo 1; exit 3
  work:
    needs: [list]
    foreach: {items_from: {step: list, stream: true}}
    run: echo "${{ item }}"
""")
    assert run_flowctl("run", str(pipeline), cwd=tmp_path).returncode == 1
    (run_id,) = rows(tmp_path, "SELECT run_id FROM runs")[0]
    got = run_flowctl("dlq", "replay", "--all", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert "is empty: nothing to replay" in got.stdout
    assert f"run {run_id} failed; to run what did not finish: flowctl run {pipeline} --run-id {run_id}" in got.stdout


def test_replaying_a_step_renamed_since_names_the_step_not_an_option(tmp_path: Path) -> None:
    pipeline = _tolerant(tmp_path)
    pipeline.write_text(pipeline.read_text().replace("  work:", "  works:"))
    got = run_flowctl("dlq", "replay", "--all", cwd=tmp_path)
    assert got.returncode == 2, got.stdout + got.stderr
    assert "step 'work', whose items are in the queue of run" in got.stderr and "is no longer a step of" in got.stderr
    assert "did you mean 'works'?" in got.stderr and "--force-step" not in got.stderr
