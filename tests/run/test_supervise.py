"""The per-attempt supervisor of remote attempts (``run/supervise.py``), without Dask.

Each test talks to the real supervisor server (``python -m flowctl.run.supervise``) as a Dask
worker does, with real process families from ``tests/bin/sleepit.py``: the timeout, a cancel,
the worker going away and the lease running out each leave no process of the attempt behind
(setsid'd grandchildren and SIGTERM-deaf ones included).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowctl.run import procs
from flowctl.run.supervise import Request, Result, Supervisors

SLEEPIT = str(Path(__file__).resolve().parent.parent / "bin" / "sleepit.py")


@pytest.fixture(scope="module")
def supervisors() -> Iterator[Supervisors]:
    sv = Supervisors()
    yield sv
    sv.close()


def request(argv: list[str], cwd: str, **fields: object) -> Request:
    req: Request = {"key": "run:step:1", "argv": argv, "env": {"FROM_FLOWCTL": "yes"}, "cwd": cwd,
                    "timeout": None, "grace": 0.5, "lease": 30.0, "secrets": []}
    req.update(fields)  # type: ignore[typeddict-item]
    return req


class Attempt:
    """This side of one attempt's socket: collects output, reads the result."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.output = b""

    def read_until(self, text: bytes, limit: float = 30.0) -> None:
        deadline = time.monotonic() + limit
        while text not in self.output:
            assert time.monotonic() < deadline, f"no {text!r} in {self.output!r}"
            self.conn.settimeout(max(0.1, deadline - time.monotonic()))
            message = self.conn.recv(1 << 17)
            assert message[:1] == b"o", message
            self.output += message[1:]

    def result(self, limit: float = 30.0) -> Result:
        self.conn.settimeout(limit)
        while True:
            message = self.conn.recv(1 << 17)
            assert message, "the supervisor ended without a result"
            if message[:1] == b"o":
                self.output += message[1:]
            else:
                assert message[:1] == b"r"
                result: Result = json.loads(message[1:])
                self.conn.close()
                return result


def start(supervisors: Supervisors, req: Request) -> Attempt:
    return Attempt(supervisors.start(req))


def wait_gone(pids: list[int], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while any(procs.is_alive(p) for p in pids):
        assert time.monotonic() < deadline, [p for p in pids if procs.is_alive(p)]
        time.sleep(0.02)


def pids_in(path: Path, limit: float = 30.0) -> list[int]:
    deadline = time.monotonic() + limit
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return [int(p) for p in path.read_text().split()]


def test_output_exit_code_and_the_worker_environment_plus_the_declared(supervisors, tmp_path) -> None:
    attempt = start(supervisors, request(["/bin/sh", "-c", 'echo "$FROM_FLOWCTL $HOME"; echo oops >&2; exit 3'],
                                         str(tmp_path)))
    result = attempt.result()
    assert (result["outcome"], result["exit_code"]) == ("failed", 3)
    assert attempt.output == f"yes {os.environ['HOME']}\noops\n".encode()
    assert result["output_bytes"] == len(attempt.output) and result["duration"] >= 0


def test_secrets_are_masked_before_they_leave_the_worker_even_split_across_writes(supervisors, tmp_path) -> None:
    attempt = start(supervisors, request([sys.executable, SLEEPIT, "split", "tok-s3c", "r3t-xyz end"], str(tmp_path),
                                         secrets=["s3cr3t-xyz"]))
    assert attempt.result()["outcome"] == "ok"
    assert attempt.output == b"tok-*** end\n"


def test_timeout_kills_the_whole_family_setsid_grandchild_included(supervisors, tmp_path) -> None:
    pidfile = tmp_path / "pids"
    t0 = time.monotonic()
    attempt = start(supervisors, request([sys.executable, SLEEPIT, "family", str(pidfile)], str(tmp_path), timeout=1.0))
    family = pids_in(pidfile)
    result = attempt.result()
    assert result["outcome"] == "timeout" and time.monotonic() - t0 < 10
    wait_gone(family, limit=0.5)  # it reported only once they were gone


def test_cancel_terminates_then_kills_what_ignores_sigterm(supervisors, tmp_path) -> None:
    attempt = start(supervisors, request([sys.executable, SLEEPIT, "ignore-term", "60"], str(tmp_path)))
    attempt.read_until(b"ignoring SIGTERM")
    attempt.conn.send(b"c")
    result = attempt.result()
    assert (result["outcome"], result["exit_code"]) == ("cancelled", 137)  # SIGKILL after the grace


def test_what_a_step_leaves_behind_is_killed_before_it_reports(supervisors, tmp_path) -> None:
    pidfile = tmp_path / "pids"
    attempt = start(supervisors, request([sys.executable, SLEEPIT, "deaf-orphan", str(pidfile)], str(tmp_path)))
    result = attempt.result()
    assert (result["outcome"], result["exit_code"]) == ("ok", 0)
    wait_gone(pids_in(pidfile), limit=0.5)


def test_the_worker_going_away_kills_the_attempt(supervisors, tmp_path) -> None:
    pidfile = tmp_path / "pids"
    attempt = start(supervisors, request([sys.executable, SLEEPIT, "family", str(pidfile)], str(tmp_path)))
    family = pids_in(pidfile)
    attempt.conn.close()  # as the kernel does when the worker process is killed
    wait_gone(family)


def test_no_lease_renewal_stops_the_attempt_and_renewals_keep_it(supervisors, tmp_path) -> None:
    pidfile = tmp_path / "pids"
    lapsed = start(supervisors, request([sys.executable, SLEEPIT, "family", str(pidfile)], str(tmp_path), lease=1.0))
    family = pids_in(pidfile)
    result = lapsed.result()
    assert result["outcome"] == "cancelled" and "lease" in (result["error"] or "")
    wait_gone(family, limit=0.5)

    kept = start(supervisors, request(["sleep", "2.5"], str(tmp_path), lease=1.5))
    kept.conn.settimeout(0.1)
    deadline = time.monotonic() + 30
    while True:  # renew ten times a second, as the client's lease thread would (a third of the lease)
        kept.conn.send(b"l")
        try:
            message = kept.conn.recv(1 << 17)
        except TimeoutError:
            assert time.monotonic() < deadline
            continue
        break
    assert message[:1] == b"r" and json.loads(message[1:])["outcome"] == "ok"


def test_a_folder_the_worker_cannot_see_fails_the_attempt_saying_so(supervisors, tmp_path) -> None:
    result = start(supervisors, request(["true"], str(tmp_path / "not-shared"))).result()
    assert result["outcome"] == "error"
    assert f"cannot see the step's working folder {tmp_path / 'not-shared'}" in (result["error"] or "")
    assert "shares" in (result["error"] or "")


def test_a_missing_command_is_an_error_not_a_crash(supervisors, tmp_path) -> None:
    result = start(supervisors, request(["no-such-command-flowctl"], str(tmp_path))).result()
    assert result["outcome"] == "error" and "command not found" in (result["error"] or "")


def test_the_server_restarts_when_it_died(tmp_path) -> None:
    sv = Supervisors()
    try:
        assert start(sv, request(["true"], str(tmp_path))).result()["outcome"] == "ok"
        assert sv._proc is not None
        sv._proc.kill()
        sv._proc.wait()
        assert start(sv, request(["true"], str(tmp_path))).result()["outcome"] == "ok"
    finally:
        sv.close()


def test_lease_renewals_arriving_as_an_attempt_ends_never_cost_its_result(supervisors, tmp_path) -> None:
    """A supervisor that closed its socket with renewals unread would reset it, and the worker
    would lose the result it had not read yet (seen in the bench: "ended without a result" the
    moment the client's first lease round reached attempts that were just ending)."""
    for _ in range(10):
        conn = supervisors.start(request(["true"], str(tmp_path)))
        for _ in range(300):  # renewals flooding in while the attempt ends
            try:
                conn.send(b"l", socket.MSG_DONTWAIT)
            except OSError:
                break
        assert Attempt(conn).result()["outcome"] == "ok"
