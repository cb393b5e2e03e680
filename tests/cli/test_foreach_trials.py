"""Fixes found in trials of foreach and its dead-letter queue (issue 15), each end to end."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_foreach_run import rows, step_folder, write
from tests.conftest import run_flowctl


def test_a_string_items_key_is_taken_without_its_json_quotes(tmp_path: Path) -> None:
    """Trial of main: ``dlq show '"in/f3.csv"'`` was the only way to name it."""
    (tmp_path / "in").mkdir()
    for name in ("f1.csv", "f2.csv", "f3.csv"):
        (tmp_path / "in" / name).write_text("x\n")
    pipeline = write(tmp_path, """version: 1
name: fan
steps:
  each:
    foreach: {items_from: {glob: "in/*.csv"}, tolerated_failure: {count: 1}}
    run: echo "reading ${{ item }}" >&2; test "${{ item }}" != in/f3.csv || test -e fixed
""")
    assert run_flowctl("run", str(pipeline), cwd=tmp_path).returncode == 0
    shown = run_flowctl("dlq", "show", "in/f3.csv", cwd=tmp_path)
    assert shown.returncode == 0 and 'Item "in/f3.csv" of step each' in shown.stdout, shown.stderr
    assert run_flowctl("dlq", "show", '"in/f3.csv"', cwd=tmp_path).returncode == 0
    log = run_flowctl("logs", "latest", "each", "--item", "in/f3.csv", cwd=tmp_path)
    assert log.returncode == 0 and "reading in/f3.csv" in log.stdout, log.stderr
    dead = json.loads((step_folder(tmp_path, "each") / "dead-letter.jsonl").read_text())
    assert dead["error"] == "exited with code 1: reading in/f3.csv" and dead["attempts"] == 1
    (tmp_path / "fixed").touch()
    done = run_flowctl("dlq", "replay", "--key", "in/f3.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is empty" in run_flowctl("dlq", "list", cwd=tmp_path).stdout


def test_results_carried_from_the_run_a_resume_continues_keep_their_record(tmp_path: Path) -> None:
    """Trial of main: reused rows in results.jsonl lacked attempts, exit code and duration, and
    their logs could not be read from the resumed run."""
    pipeline = write(tmp_path, """version: 1
name: fan
steps:
  each:
    foreach: {items: [a, b], key: "${{ item }}"}
    run: echo "did ${{ item }}"; test "${{ item }}" = a || test -e fixed
""")
    assert run_flowctl("run", str(pipeline), cwd=tmp_path).returncode == 1
    (tmp_path / "fixed").touch()
    assert run_flowctl("run", str(pipeline), "--resume", cwd=tmp_path).returncode == 0
    results = {r["key"]: r for r in map(json.loads, (step_folder(tmp_path, "each") / "results.jsonl").read_text().splitlines())}
    assert results["a"]["status"] == "reused" and results["a"]["attempts"] == 1 and results["a"]["exit_code"] == 0
    assert results["a"]["duration"] is not None
    log = run_flowctl("logs", "latest", "each", "--item", "a", cwd=tmp_path)
    assert log.returncode == 0 and log.stdout == "did a\n", log.stderr


def test_a_bad_item_found_at_run_time_names_its_source(tmp_path: Path) -> None:
    (tmp_path / "items.jsonl").write_text('{"id": 1}\n"x"\n')
    pipeline = write(tmp_path, """version: 1
name: fan
steps:
  each:
    foreach: {items_from: {file: items.jsonl}, key: "${{ item.id }}"}
    run: echo "${{ item.id }}"
""")
    done = run_flowctl("run", str(pipeline), "--no-progress", cwd=tmp_path)
    assert done.returncode == 1
    assert "items file items.jsonl: item 2: the item is a string, not an object" in done.stdout, done.stdout


def test_remediate_runs_per_item_then_one_final_attempt(tmp_path: Path) -> None:
    """A foreach step's ``remediate`` applies to each item as to a step: after an item's last
    failed attempt its remediation runs (with the item's expressions), then one final attempt."""
    pipeline = write(tmp_path, """version: 1
name: fan
steps:
  each:
    foreach: {items: [a, b, c], key: "${{ item }}", tolerated_failure: {count: 1}}
    run: echo "try ${{ item }}"; test "${{ item }}" = a || test -e "healed-${{ item }}"
    retries: 1
    retry_delay: 0s
    remediate: {run: 'echo "healing ${{ item }}"; test "${{ item }}" = c || touch "healed-${{ item }}"'}
""")
    done = run_flowctl("run", str(pipeline), "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "healed-b").exists() and not (tmp_path / "healed-a").exists()
    got = {r[0]: r[1:] for r in rows(tmp_path, "SELECT key, status, attempts FROM items")}
    assert got == {"a": ("succeeded", 1), "b": ("succeeded", 3), "c": ("dead-lettered", 3)}
    folder = step_folder(tmp_path, "each") / "items"
    assert (folder / "b" / "remediate.log").read_text() == "healing b\n" and (folder / "b" / "3.log").read_text() == "try b\n"
