"""Output that cannot be written (stdout on a full disk: ``> /dev/full``) is a storage error, exit
74, said once on stderr; never an internal error with a crash report (trial 17: ``runs >
/dev/full`` and ``show --json > /dev/full`` exited 70, ``run > /dev/full`` too after its run
was recorded). ``run`` itself treats its output as any sink: a warning, the run goes on and
keeps its exit code."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import flowctl_env, run_flowctl

FULL = "/dev/full"
pytestmark = pytest.mark.skipif(
    not (os.path.exists(FULL) and stat.S_ISCHR(os.stat(FULL).st_mode)), reason="needs the /dev/full device"
)

PIPELINE = "version: 1\nname: tiny\nsteps:\n  a: {run: 'echo a'}\n  b: {run: 'echo b', needs: [a]}\n"


def _to_full(args: list[str], cwd: Path, crash_dir: Path) -> subprocess.CompletedProcess[str]:
    with open(FULL, "w") as full:
        return subprocess.run(
            [sys.executable, "-m", "flowctl", *args], cwd=cwd, stdout=full, stderr=subprocess.PIPE, text=True,
            env=flowctl_env({"FLOWCTL_CRASH_DIR": str(crash_dir)}), timeout=120, check=False,
        )


@pytest.mark.parametrize("args", [["runs"], ["show", "latest", "--json"], ["show", "latest"], ["chaos", "check", "latest"],
                                  ["validate", "p.yaml"]])
def test_a_command_whose_stdout_is_full_exits_74_with_a_clear_error(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "p.yaml").write_text(PIPELINE, encoding="utf-8")
    assert run_flowctl("run", "p.yaml", "--no-progress", "--chaos", "delay=1ms@1", cwd=tmp_path).returncode == 0
    crashes = tmp_path / "crashes"
    crashes.mkdir()
    got = _to_full(args, tmp_path, crashes)
    assert got.returncode == 74, got.stderr
    assert got.stderr.count("flowctl: error: cannot write the output (stdout): No space left on device") == 1, got.stderr
    assert "internal error" not in got.stderr and "Traceback" not in got.stderr
    assert not list(crashes.iterdir())


def test_a_run_whose_stdout_is_full_runs_to_the_end_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PIPELINE, encoding="utf-8")
    crashes = tmp_path / "crashes"
    crashes.mkdir()
    got = _to_full(["run", "p.yaml", "--no-progress"], tmp_path, crashes)
    assert got.returncode == 0, got.stderr
    assert "warning: the run's output failed and was switched off (cannot write the output (stdout)" in got.stderr
    assert "internal error" not in got.stderr and not list(crashes.iterdir())
    shown = run_flowctl("runs", "--json", cwd=tmp_path)
    assert '"status": "succeeded"' in shown.stdout
