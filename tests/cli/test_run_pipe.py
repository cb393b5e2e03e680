"""``flowctl run … | head -1``: when whoever reads the output goes away, the run goes on with its
output dropped and exits with its own code, and says nothing about it (issue 13: it printed
"output PlainSink failed"). Real pipes, closed early for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import flowctl_env, run_flowctl

STEPS = 120


def _pipeline(write_pipeline, *, failing: bool) -> Path:  # type: ignore[no-untyped-def]
    steps = "".join(f"  s{i}: {{run: 'echo step {i}'}}\n" for i in range(STEPS))
    if failing:
        steps += "  broken: {run: 'echo bad row 17; exit 3'}\n"
    return write_pipeline(f"version: 1\nname: piped\nconcurrency: 2\nsteps:\n{steps}")  # type: ignore[no-any-return]


def _last_run(state: Path) -> dict[str, object]:
    runs = run_flowctl("runs", "--json", "--state-dir", str(state))
    assert runs.returncode == 0, runs.stderr
    run_id = json.loads(runs.stdout)[0]["run_id"]
    shown = run_flowctl("show", run_id, "--json", "--state-dir", str(state))
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("failing", [False, True])
def test_head_1_the_run_goes_on_and_exits_with_its_own_code(write_pipeline, tmp_path: Path, failing: bool) -> None:
    path = _pipeline(write_pipeline, failing=failing)
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowctl", "run", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=flowctl_env(), text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does after its line
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == (1 if failing else 0)
    assert " RUN piped: " in first
    assert stderr == ""  # no "PlainSink", no "Broken pipe", no "Exception ignored"
    run = _last_run(tmp_path / ".flowctl")
    statuses = {s["step"]: s["status"] for s in run["steps"]}  # type: ignore[union-attr, index]
    assert len(statuses) == STEPS + failing
    assert [s for s, status in statuses.items() if status != "succeeded"] == (["broken"] if failing else [])


@pytest.mark.parametrize("resume", [False, True])
def test_a_reader_gone_before_the_first_line_changes_nothing(write_pipeline, tmp_path: Path, resume: bool) -> None:
    path = _pipeline(write_pipeline, failing=True)
    if resume:  # a run to resume: --resume says so before anything else
        assert run_flowctl("run", str(path)).returncode == 1
    read_end, write_end = os.pipe()
    os.close(read_end)  # `flowctl run … | true`: nobody will ever read
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "flowctl", "run", str(path), *(["--resume"] if resume else [])],
            stdout=write_end, stderr=subprocess.PIPE, env=flowctl_env(), text=True, timeout=120, check=False,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    run = _last_run(tmp_path / ".flowctl")
    assert run["run"]["status"] == "failed" and run["run"]["root_failure"] == "broken"  # type: ignore[index]
    assert (run["run"]["resumed_from"] is not None) is resume  # type: ignore[index]  # it did run


def test_a_sink_that_fails_is_named_as_a_user_would(write_pipeline) -> None:
    path = _pipeline(write_pipeline, failing=False)
    result = run_flowctl("run", str(path), "--log-file", "/dev/full")
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "flowctl: warning: the JSON log (/dev/full) failed and was switched off (No space left on device);"
        " the run went on\n"
    )


def test_both_streams_closed_with_a_json_log(write_pipeline, tmp_path: Path) -> None:
    """``flowctl run --log-format json … 2>&1 | head -1``: the JSON log on stderr goes too."""
    path = _pipeline(write_pipeline, failing=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowctl", "run", str(path), "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=flowctl_env(), text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    run = _last_run(tmp_path / ".flowctl")
    assert run["run"]["status"] == "succeeded"  # type: ignore[index]
