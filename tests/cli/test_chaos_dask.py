"""``--chaos kill-worker=P`` under ``--executor dask`` (issue 17): a real LocalCluster of worker
processes; the chosen attempt's worker process is SIGKILLed, the attempt fails worker-lost and
the retry succeeds on a worker that is alive."""

from __future__ import annotations

import json
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


def test_the_ledger_and_item_faults_work_on_dask_workers(tmp_path: Path) -> None:
    """Issue 17 under --executor dask: each attempt's FLOWCTL_LEDGER reaches the worker (a
    LocalCluster shares the file system), kill-worker reaches foreach items, and the checker
    reads both: an idempotent pipeline passes, a step that is not idempotent is caught."""
    effect = """echo "{\\"effect\\": \\"$1\\"}" >> "$FLOWCTL_LEDGER\""""
    (tmp_path / "pipeline.yaml").write_text(
        "version: 1\nname: ledgered\nsteps:\n"
        f"  load: {{run: '{effect.replace(chr(39), chr(39) * 2)}' , retries: 2, retry_delay: 0s}}\n"
        "  each:\n    needs: [load]\n    retries: 2\n    retry_delay: 0s\n"
        "    run: 'echo \"{\\\"effect\\\": \\\"item $FLOWCTL_ITEM\\\"}\" >> \"$FLOWCTL_LEDGER\"'\n"
        "    foreach: {items: [a, b]}\n"
    )
    base = ["run", "pipeline.yaml", "--no-progress", "-j", "1", "--executor", "dask", "--dask-workers", "2", "--dask-threads", "1"]
    # one item at a time: a killed worker takes no other attempt with it
    got = run_flowctl(*base, "--chaos", "kill-worker=1,max=1,steps=each", cwd=tmp_path, timeout=180)
    assert got.returncode == 0, got.stdout + got.stderr
    [run_id] = runs(tmp_path / ".flowctl")
    rows = state_rows(tmp_path / ".flowctl", "SELECT key, status, attempts, injected FROM items WHERE run_id = ? "
                      "ORDER BY key", run_id)
    assert [tuple(r) for r in rows] == [('"a"', "succeeded", 2, "1:kill-worker"), ('"b"', "succeeded", 2, "1:kill-worker")]
    check = run_flowctl("chaos", "check", "--json", cwd=tmp_path)
    doc = json.loads(check.stdout)
    assert check.returncode == 0 and doc["effects"] == 3 and doc["injected"] == {"kill-worker": 2}, check.stdout
    # the same load killed as it ends (its effect done, its success lost) runs again: recorded twice
    got = run_flowctl(*base, "--chaos", "kill=1,max=1,steps=load", cwd=tmp_path, timeout=180)
    assert got.returncode == 0, got.stdout + got.stderr
    check = run_flowctl("chaos", "check", cwd=tmp_path)
    assert check.returncode == 1
    assert "FAIL effects" in check.stdout and "recorded 2 times" in check.stdout, check.stdout
