"""A step that reads another step's output is up to date after one run (trial of main):
the fingerprint recorded with a step's success holds its inputs as the step saw them when it
started, after its upstream rewrote them, so the next run, like make, runs nothing; and
``plan --explain`` says what ``run`` decides."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_flowctl

CHAIN = """\
version: 1
name: chain
params:
  n: {default: "1"}
steps:
  a:
    run: echo ${{ params.n }} > a.txt
    outputs: [a.txt]
  b:
    needs: [a]
    run: cat a.txt > b.txt && echo ran >> ran.log
    inputs: [a.txt]
    outputs: [b.txt]
  c:
    needs: [b]
    run: cat b.txt > c.txt
    inputs: [b.txt]
    outputs: [c.txt]
"""


def statuses(folder: Path, *args: str) -> dict[str, str]:
    done = run_flowctl("run", "chain.yaml", "--log-format", "json", *args, cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    found = {}
    for line in done.stderr.splitlines():
        event = json.loads(line)
        if event.get("event") == "step_finished":
            found[event["step"]] = event["status"]
    return found


def test_a_chain_is_up_to_date_after_one_run(tmp_path: Path) -> None:
    (tmp_path / "chain.yaml").write_text(CHAIN)
    assert set(statuses(tmp_path).values()) == {"succeeded"}
    explained = run_flowctl("plan", "chain.yaml", "--explain", cwd=tmp_path)
    assert explained.returncode == 0, explained.stderr
    assert "changed since run" not in explained.stdout, explained.stdout
    assert "will run" not in explained.stdout, explained.stdout
    assert statuses(tmp_path) == {"a": "up to date", "b": "up to date", "c": "up to date"}
    assert (tmp_path / "ran.log").read_text().count("ran") == 1


def test_after_a_param_change_the_steps_downstream_run_once(tmp_path: Path) -> None:
    (tmp_path / "chain.yaml").write_text(CHAIN)
    statuses(tmp_path)
    assert set(statuses(tmp_path, "-p", "n=2").values()) == {"succeeded"}
    assert (tmp_path / "c.txt").read_text() == "2\n"
    assert statuses(tmp_path, "-p", "n=2") == {"a": "up to date", "b": "up to date", "c": "up to date"}
    assert (tmp_path / "ran.log").read_text().count("ran") == 2


def test_a_resume_of_a_finished_chain_runs_nothing(tmp_path: Path) -> None:
    (tmp_path / "chain.yaml").write_text(CHAIN)
    statuses(tmp_path)
    statuses(tmp_path, "-p", "n=3")
    done = run_flowctl("run", "chain.yaml", "--resume", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "nothing to do" in done.stdout and "3 step(s) reused" in done.stdout, done.stdout
