"""``flowctl stats`` and ``flowctl alerts check`` as real processes over a real state store."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_flowctl
from tests.observe.helpers import recorded_run, simple_run, store_runs

PIPELINE = """
version: 1
name: etl
steps:
  extract: {run: "true"}
  lint: {run: "true"}
  transform: {run: "true", needs: [extract]}
  report: {run: "true", needs: [extract], continue_on_error: true}
  load: {run: "true", needs: [transform]}
  publish: {run: "true", needs: [lint]}
alerts:
  - when: error_rate > 50%
    description: too many failed attempts
  - when: step.load.duration > 2x baseline
  - when: duration > 1h
notify:
  - run: [{python}, hook.py]
"""

HOOK = """
import json, os, sys
alert = json.load(sys.stdin)
with open("paged.jsonl", "a") as fh:
    fh.write(json.dumps({"alert": alert["alert"], "run": os.environ["FLOWCTL_RUN_ID"]}) + "\\n")
"""

STEPS = {"extract": 10.0, "lint": 5.0, "transform": 20.0, "report": 5.0, "load": 30.0, "publish": 5.0}


@pytest.fixture
def project(write_pipeline: Callable[..., Path], tmp_path: Path) -> Path:
    path = write_pipeline(PIPELINE.replace("{python}", json.dumps(sys.executable)))
    (tmp_path / "hook.py").write_text(HOOK)
    return path


def _history(tmp_path: Path) -> None:
    good = [simple_run(f"2026112{i}T000000-000{i}", 100.0 * i, STEPS) for i in range(1, 4)]
    store_runs(tmp_path / ".flowctl", *good, recorded_run("20261129T000000-zzzz", scheduled_for=995.0))


def test_stats_json_over_recorded_runs(project: Path, tmp_path: Path) -> None:
    _history(tmp_path)
    result = run_flowctl("stats", str(project), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["runs"], data["finished"], data["succeeded"]) == (4, 4, 3)
    assert data["success_rate"] == 0.75
    assert data["duration"]["p50"] == 75.0  # 75, 75, 75, 130
    assert data["slowest_step"] == "load"  # p50 of 30, 30, 30, 90
    assert data["most_failing_step"] == "report"  # lint and report each failed in 1 of 4 runs: ties by name
    # latest success vs baseline (median of the 3 earlier successes): load 90/30 is above 1.5x;
    # transform 28/20 = 1.4x is not; lint (timed out) and report (failed) did not succeed in the
    # latest run, so their latest successful time is 5/5
    assert data["slower_than_baseline"] == ["load"]
    steps = {s["step"]: s for s in data["steps"]}
    assert steps["load"]["latest"] == 90.0 and steps["load"]["baseline"] == 30.0
    assert steps["lint"]["latest"] == 5.0 and steps["lint"]["p99"] == 5.0  # the 25 s timeout is no step time
    assert [s["step"] for s in data["steps"]] == ["extract", "lint", "transform", "report", "load", "publish"]
    assert data["removed_steps"] == []
    assert data["lateness"]["count"] == 0  # RunStarted carries no fire time yet


def test_stats_text_and_window_options(project: Path, tmp_path: Path) -> None:
    _history(tmp_path)
    text = run_flowctl("stats", str(project), "--last", "2")
    assert text.returncode == 0, text.stderr
    assert "etl: 2 run(s), 2 finished, success rate 50.0% (1/2)" in text.stdout
    assert "slowest step   load" in text.stdout
    assert run_flowctl("stats", str(project), "--since", "1d", "--json").returncode == 0
    both = run_flowctl("stats", str(project), "--last", "2", "--since", "1d")
    assert both.returncode == 2 and "cannot be combined" in both.stderr
    bad = run_flowctl("stats", str(project), "--since", "soon")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_stats_without_runs(project: Path, tmp_path: Path) -> None:
    result = run_flowctl("stats", str(project))
    assert result.returncode == 0
    assert result.stdout == f"etl: no runs recorded in {tmp_path / '.flowctl'}\n"


def test_alerts_check_fires_and_notifies(project: Path, tmp_path: Path) -> None:
    _history(tmp_path)
    result = run_flowctl("alerts", "check", str(project), "--notify")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "run 20261129T000000-zzzz of etl (failed)"
    assert lines[1].startswith("FIRING  error_rate > 50% - too many failed attempts (value 57.1%")
    assert lines[2].startswith("FIRING  step.load.duration > 2x baseline (value 1m30s, threshold 1m00s, baseline 30.0s")
    assert lines[3].startswith("ok      duration > 1h")
    paged = [json.loads(line) for line in (tmp_path / "paged.jsonl").read_text().splitlines()]
    assert sorted(p["alert"] for p in paged) == ["error_rate > 50%", "step.load.duration > 2x baseline"]
    assert {p["run"] for p in paged} == {"20261129T000000-zzzz"}


def test_alerts_check_on_a_quiet_run_exits_0(project: Path, tmp_path: Path) -> None:
    _history(tmp_path)
    result = run_flowctl("alerts", "check", str(project), "--run-id", "20261123", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["fired"] is False and data["run_id"] == "20261123T000000-0003"
    assert [a["fired"] for a in data["alerts"]] == [False, False, False]
    assert not (tmp_path / "paged.jsonl").exists()


def test_alerts_check_without_runs_is_a_usage_error(project: Path) -> None:
    result = run_flowctl("alerts", "check", str(project))
    assert result.returncode == 2 and "no recorded run of etl" in result.stderr


def test_invalid_alert_is_a_validation_error_with_its_line(write_pipeline: Callable[..., Path]) -> None:
    path = write_pipeline(
        """
        version: 1
        name: etl
        steps:
          load: {run: "true"}
        alerts:
          - when: step.lod.duration > 10m
          - when: "error_rate > 10m"
        """
    )
    result = run_flowctl("validate", str(path), "--format", "json")
    assert result.returncode == 1
    diags = [(d["line"], d["column"], d["end_column"], d["message"], d["hint"]) for d in json.loads(result.stdout)["files"][0]["diagnostics"]]
    assert diags == [
        (6, 16, 19, "unknown step 'lod' in alert", "did you mean 'load'?"),
        (7, 25, 28, "a duration does not fit error_rate", "write a fraction (0.05), a percentage (5%) or Nx baseline"),
    ]
    text = run_flowctl("validate", str(path)).stdout
    assert f"{path}:6:16: error: unknown step 'lod' in alert" in text


def test_show_includes_the_run_metrics(project: Path, tmp_path: Path) -> None:
    _history(tmp_path)
    text = run_flowctl("show", "20261129", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "throughput     2.3 steps/min (5 completed in 2m10s)" in text.stdout
    assert "error rate     4/7 attempts failed (57.1%), 2/5 steps failed (40.0%)" in text.stdout
    assert "queue wait     p50 1.0s  p99 4.9s  highest queue depth 2" in text.stdout
    data = json.loads(run_flowctl("show", "20261129", "--json", cwd=tmp_path).stdout)
    assert data["metrics"]["max_queue_depth"] == 2 and data["metrics"]["error_rate"] == pytest.approx(4 / 7)
    assert data["run"]["run_id"] == "20261129T000000-zzzz"


def test_stats_by_name_shows_the_current_definition_and_keeps_removed_steps_apart(tmp_path: Path) -> None:
    pipeline = tmp_path / "pipelines" / "etl.yaml"
    pipeline.parent.mkdir()
    (tmp_path / ".flowctl").mkdir()  # the project's state folder, as `flowctl init` makes it
    pipeline.write_text("version: 1\nname: etl\nsteps:\n  old: {run: 'true'}\n  extract: {run: 'true'}\n")
    assert run_flowctl("run", str(pipeline)).returncode == 0
    pipeline.write_text(
        "version: 1\nname: etl\nsteps:\n  load: {run: 'true', needs: [extract]}\n  extract: {run: 'true'}\n"
    )
    assert run_flowctl("run", str(pipeline)).returncode == 0
    for where, args in ((tmp_path, ("etl",)), (tmp_path / "pipelines", ("etl.yaml",))):
        data = json.loads(run_flowctl("stats", *args, "--json", cwd=where).stdout)
        assert [s["step"] for s in data["steps"]] == ["load", "extract"]
        assert [(s["step"], s["runs"]) for s in data["removed_steps"]] == [("old", 1)]
    text = run_flowctl("stats", "etl", cwd=tmp_path).stdout
    assert text.rstrip().endswith("no longer in the pipeline (left out above): old")


def test_stats_says_where_runs_are_when_there_are_none_here(tmp_path: Path) -> None:
    sub = tmp_path / "team"
    (sub / "pipelines").mkdir(parents=True)
    path = sub / "pipelines" / "etl.yaml"
    path.write_text("version: 1\nname: etl\nsteps:\n  a: {run: 'true'}\n")
    assert run_flowctl("run", str(path)).returncode == 0  # no project folder: beside the file
    (tmp_path / ".flowctl").mkdir()
    got = run_flowctl("stats", "etl", cwd=tmp_path)
    assert got.returncode == 0
    assert got.stdout.splitlines() == [
        "etl: no runs recorded in .flowctl",
        "runs are recorded elsewhere under the project:",
        f"  team/pipelines/.flowctl: 1 run(s), newest {json.loads(run_flowctl('runs', '--json', cwd=sub / 'pipelines').stdout)[0]['run_id']} (etl, succeeded)",
        "read them with: flowctl stats etl --state-dir team/pipelines/.flowctl",
    ]
    assert "etl: 1 run(s)" in run_flowctl("stats", "etl", "--state-dir", "team/pipelines/.flowctl", cwd=tmp_path).stdout
