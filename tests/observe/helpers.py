"""Helpers for observe tests: a recorded run with hand-computed figures, real servers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest

from flowctl.observe.records import AttemptRecord, RunRecord, StepRecord
from flowctl.run.events import AttemptKind, AttemptOutcome, RunStatus, StepStatus

OK, FAILED, TIMEOUT = AttemptOutcome.OK, AttemptOutcome.FAILED, AttemptOutcome.TIMEOUT

# A run of six steps, 1000 s to 1130 s (the figures are worked out by hand in test_metrics.py):
#   extract ─┬─ transform ── load          lint ── publish (skipped: lint failed)
#            └─ report (continue_on_error; fails, remediated, fails again)
NEEDS = {"transform": ("extract",), "report": ("extract",), "load": ("transform",), "publish": ("lint",)}


def recorded_run(run_id: str = "20261125T100000-aaaa", scheduled_for: float | None = 995.0) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        pipeline="etl",
        status=RunStatus.FAILED,
        started_at=1000.0,
        finished_at=1130.0,
        scheduled_for=scheduled_for,
        needs=NEEDS,
        steps=(
            StepRecord("extract", StepStatus.SUCCEEDED, 1000.0, 1010.0, (AttemptRecord(1, 1000.0, 1010.0, OK, 0),)),
            StepRecord(
                "lint", StepStatus.FAILED, 1000.0, 1030.0, (AttemptRecord(1, 1005.0, 1030.0, TIMEOUT, None),)
            ),
            StepRecord(
                "transform",
                StepStatus.SUCCEEDED,
                1010.0,
                1040.0,
                (AttemptRecord(1, 1012.0, 1020.0, FAILED, 1), AttemptRecord(2, 1025.0, 1040.0, OK, 0)),
            ),
            StepRecord(
                "report",
                StepStatus.FAILED_ALLOWED,
                1010.0,
                1020.0,
                (
                    AttemptRecord(1, 1011.0, 1015.0, FAILED, 3),
                    AttemptRecord(2, 1015.0, 1016.0, OK, 0, AttemptKind.REMEDIATE),
                    AttemptRecord(3, 1016.0, 1020.0, FAILED, 3, AttemptKind.FINAL),
                ),
            ),
            StepRecord("load", StepStatus.SUCCEEDED, 1040.0, 1130.0, (AttemptRecord(1, 1040.0, 1130.0, OK, 0),)),
            StepRecord("publish", StepStatus.SKIPPED, None, 1030.0, ()),
        ),
    )


def need_binary(name: str) -> str:
    """The path of a Debian-packaged binary; skip without it, except on CI where it must exist."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install -y {name})"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": CI must install it")
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def start_server(argv: list[str], url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(url, proc)
    except Exception:
        proc.kill()
        proc.wait()
        raise
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
