"""``--wait [DURATION]``: the optional value is read the way a user means it."""

from __future__ import annotations

import pytest

from flowctl.cli._run_state import wait_seconds
from flowctl.cli._wait import expand_wait
from flowctl.errors import UsageError


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["p.yaml", "--wait"], ["p.yaml", "--wait", "forever"]),
        (["--wait", "p.yaml"], ["--wait", "forever", "p.yaml"]),
        (["p.yaml", "--wait", "10m"], ["p.yaml", "--wait", "10m"]),
        (["p.yaml", "--wait", "1h30m", "-j", "2"], ["p.yaml", "--wait", "1h30m", "-j", "2"]),
        (["p.yaml", "--wait", "--no-progress"], ["p.yaml", "--wait", "forever", "--no-progress"]),
        (["p.yaml", "--wait=5s"], ["p.yaml", "--wait=5s"]),
        (["p.yaml", "--", "--wait"], ["p.yaml", "--", "--wait"]),
    ],
)
def test_expand_wait(args, expected):
    assert expand_wait(args) == expected


def test_wait_seconds():
    assert wait_seconds(None) == 0.0
    assert wait_seconds("forever") is None
    assert wait_seconds("2m") == 120.0
    with pytest.raises(UsageError, match="not a duration"):
        wait_seconds("soonish")


@pytest.mark.parametrize(("wait", "how_long"), [(["--wait", "10m"], "at most 10m"), (["--wait"], "as long as it runs")])
def test_wait_says_whom_it_waits_for_when_it_starts_waiting(tmp_path, write_pipeline, wait, how_long):  # type: ignore[no-untyped-def]
    """Issue 13: ``run --wait 10m`` printed nothing while it waited."""
    import subprocess
    import sys
    import time

    from tests.conftest import flowctl_env

    (tmp_path / ".flowctl").mkdir()
    gate = tmp_path / "gate"
    started = tmp_path / "started"
    path = write_pipeline(
        f"version: 1\nname: held\nsteps:\n  a: {{run: 'touch {started}; while [ ! -e {gate} ]; do sleep 0.05; done'}}\n"
    )
    first = subprocess.Popen([sys.executable, "-m", "flowctl", "run", str(path), "--no-progress"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=flowctl_env(), cwd=tmp_path)
    second = None
    try:
        deadline = time.monotonic() + 60
        while not started.exists():  # the first run holds the lock once its step runs
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        second = subprocess.Popen([sys.executable, "-m", "flowctl", "run", str(path), "--no-progress", *wait],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=flowctl_env(), text=True, cwd=tmp_path)
        assert second.stdout is not None
        line = second.stdout.readline()  # printed while the lock is still held: the gate is shut
        assert "waiting for run " in line and f"pid {first.pid}" in line
        assert "held.lock" in line and f"(--wait: {how_long})" in line
        gate.touch()
        assert first.wait(timeout=60) == 0
        rest, _ = second.communicate(timeout=60)
        assert second.returncode == 0 and "RUN held" in rest
    finally:
        gate.touch()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
