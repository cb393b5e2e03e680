"""A reader that goes away (``flowctl … | head -1``) stops the output, never the exit code: one rule
at the boundary for every command (issue 13: ``validate | head -1`` exited 1, "a file is invalid",
about half the time, with nothing on stderr). Real pipes, closed for real: before the command
starts, and after its first line with more output to come than a pipe holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import flowctl_env, run_flowctl

PIPELINE = "version: 1\nname: {name}\nsteps:\n  a: {{run: 'echo a'}}\n  b: {{run: 'echo b', needs: [a]}}\n"
# Each `ok` line of `validate` names its file: long names make the output outgrow a pipe's buffer
# (64 KiB on Linux) and Python's (8 KiB), so a write after the reader left is certain.
FILES = 400
LONG = "x" * 180


def _project(tmp_path: Path, *, invalid: bool = False) -> Path:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    for i in range(FILES):
        (folder / f"{LONG}{i:04}.yaml").write_text(PIPELINE.format(name=f"p{i}"), encoding="utf-8")
    if invalid:
        (folder / "broken.yaml").write_text("version: 1\nname: broken\nsteps:\n  a: {run: 3}\n", encoding="utf-8")
    return folder


def _closed_from_the_start(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `flowctl … | true`: nobody will ever read
    try:
        return subprocess.run(
            [sys.executable, "-m", "flowctl", *args], cwd=cwd, stdout=write_end, stderr=subprocess.PIPE,
            env=flowctl_env(), text=True, timeout=120, check=False,
        )
    finally:
        os.close(write_end)


def _closed_after_the_first_line(args: list[str], cwd: Path) -> tuple[int, str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowctl", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=flowctl_env(), text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does after its line
    stderr = proc.stderr.read()
    return proc.wait(timeout=120), first, stderr


@pytest.mark.parametrize(
    "args",
    [["validate"], ["validate", "--json"], ["runs"], ["runs", "--json"], ["plan", "pipelines/p.yaml"],
     ["show", "latest"], ["graph", "pipelines/p.yaml"]],
    ids=" ".join,
)
def test_a_reader_gone_before_any_output_keeps_the_exit_code(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / ".flowctl").mkdir()  # the project's state folder, found from both folders
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "p.yaml").write_text(PIPELINE.format(name="p"), encoding="utf-8")
    assert run_flowctl("run", "pipelines/p.yaml", cwd=tmp_path).returncode == 0
    result = _closed_from_the_start(args, tmp_path)
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize("invalid", [False, True], ids=["valid", "one-invalid"])
def test_validate_read_by_head_1_exits_as_validate_does(tmp_path: Path, invalid: bool) -> None:
    _project(tmp_path, invalid=invalid)
    code, first, stderr = _closed_after_the_first_line(["validate"], tmp_path)
    assert code == (1 if invalid else 0)  # 1 only because a file is invalid, never because of the pipe
    assert first.startswith("pipelines/broken.yaml:4:" if invalid else "ok    pipelines/")
    assert stderr == ""


def test_a_failure_still_speaks_on_stderr_when_stdout_is_gone(tmp_path: Path) -> None:
    result = _closed_from_the_start(["plan", "missing.yaml"], tmp_path)
    assert result.returncode == 2
    assert "missing.yaml" in result.stderr
