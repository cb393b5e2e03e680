"""``--chaos kill-worker=P`` under ``--executor dask`` (issue 17): a real LocalCluster of worker
processes; the chosen attempt's worker process is SIGKILLed, the attempt fails worker-lost and
the retry succeeds on a worker that is alive."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_flowctl
from tests.daskhelp import dask_test, require_dask, runs, state_rows

pytestmark = dask_test


@pytest.fixture(autouse=True)
def _dask_installed() -> None:
    require_dask()


def test_kill_worker_loses_the_attempt_and_the_retry_succeeds(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(
        "version: 1\nname: lost\nsteps:\n"
        "  step: {run: 'echo ran >> ran.txt', retries: 2, retry_delay: 0s}\n"
        "  after: {run: 'true', needs: [step]}\n"
    )
    got = run_flowctl("run", "pipeline.yaml", "--no-progress", "--executor", "dask", "--dask-workers", "2",
                      "--dask-threads", "1", "--chaos", "kill-worker=1,max=1,steps=step", cwd=tmp_path, timeout=180)
    assert got.returncode == 0, got.stdout + got.stderr
    [run_id] = runs(tmp_path / ".flowctl")
    rows = state_rows(tmp_path / ".flowctl", "SELECT attempt, outcome, injected, host FROM attempts "
                      "WHERE run_id = ? AND step = 'step' ORDER BY attempt", run_id)
    assert [tuple(r[:3]) for r in rows] == [(1, "worker-lost", "kill-worker"), (2, "ok", "")]
    assert rows[0][3] != rows[1][3]  # the killed worker came back under another address, or the other ran it
    assert (tmp_path / "ran.txt").read_text() == "ran\n"  # the killed attempt never ran the command
    check = run_flowctl("chaos", "check", cwd=tmp_path)
    assert check.returncode == 0, check.stdout


def test_kill_worker_is_refused_with_the_local_executor(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text("version: 1\nname: l\nsteps:\n  a: {run: 'true'}\n")
    got = run_flowctl("run", "pipeline.yaml", "--chaos", "kill-worker=0.5", cwd=tmp_path)
    assert got.returncode == 2 and "--executor dask" in got.stderr
