"""What flowctl runs inside a Dask worker: the task function and the worker plugin.

``run_attempt`` is the function each attempt is submitted as. It never runs the step itself:
it asks the worker's ``Supervisors`` (``run/supervise.py``) for a supervisor process, relays the
supervisor's (already masked) output and result to the client as events on the run's topic
(``Worker.log_event``: ordered per worker, so the output of an attempt always precedes its
result), and returns the result too. ``AttemptsPlugin`` (a ``WorkerPlugin``, registered by the
client) owns the worker's per-worker state: the supervisor server, the sockets of the running
attempts (so ``cancel``/``renew`` from ``Client.run`` reach them), and the runs cancelled here
(an attempt of such a run that Dask starts late refuses to start).

Re-runs: flowctl owns retries, so an attempt must never run twice. On a shared scheduler, where
``allowed-failures`` keeps its default and a task whose worker died is silently rescheduled,
the attempt first claims its key on the scheduler (a ``MultiLock`` taken without waiting: one
atomic round trip, held until the client releases it after the run); a second start of the same
key finds the claim taken and reports ``worker-lost`` instead of running. Why the scheduler and
not a marker file: every start of a key talks to the same scheduler, whereas no folder is known
to be shared by all workers (the state folder may be local to the client), and NFS caches make
"create if absent" unreliable. A LocalCluster that flowctl starts runs with
``allowed-failures=0``, so Dask itself fails such a task at once and no claim is needed.

Imported on the workers (by reference, through cloudpickle): only the standard library,
``distributed`` and ``run/supervise.py`` at the top.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from collections.abc import Iterable
from typing import TypedDict

from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.multi_lock import MultiLock
from distributed.worker import Worker

from flowctl import __version__
from flowctl.run.supervise import Request, Result, Supervisors

#: The plugin's name on the cluster: one per flowctl version and wire format (workers shared by
#: two flowctl versions keep one plugin of each).
PLUGIN = f"flowctl-attempts-{__version__}-1"
_TOMBSTONES = 256  # cancelled runs remembered per worker


class Payload(TypedDict):
    """What the client submits per attempt."""

    request: Request
    topic: str  # the run's event topic
    run: str  # run id
    owner: str  # which pipeline (and state folder) the run belongs to: for orphans
    claim: bool  # claim the key on the scheduler first (shared scheduler)


class Running(TypedDict):
    """An attempt running on this worker, as ``list_attempts`` reports it."""

    key: str
    run: str
    owner: str


class AttemptsPlugin(WorkerPlugin):
    """The per-worker state of flowctl's attempts (see the module docstring)."""

    idempotent = True  # registering it again (another run) keeps the one with live attempts
    name = PLUGIN

    def __init__(self, *, ignore_interrupt: bool = False) -> None:
        # A LocalCluster flowctl started shares flowctl's terminal: its workers must ignore the
        # Ctrl-C that flowctl turns into a clean cancel, also a worker the Nanny restarts later
        # (workers started with the cluster inherit it from flowctl). Never set on a shared one.
        self.ignore_interrupt = ignore_interrupt

    def setup(self, worker: Worker) -> None:
        if self.ignore_interrupt and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        self._lock = threading.Lock()
        self._supervisors = Supervisors()
        self._running: dict[str, tuple[socket.socket, Running]] = {}
        self._cancelled_runs: list[str] = []
        self._cancelled_keys: set[str] = set()

    def teardown(self, worker: Worker) -> None:
        with self._lock:
            running = list(self._running.values())
            self._running.clear()
        for conn, _ in running:  # the supervisors see the socket close and stop their attempts
            conn.close()
        self._supervisors.close()

    # -- used by run_attempt (a worker thread) ---------------------------------------------------

    def start(self, payload: Payload) -> socket.socket | None:
        """A supervisor for the attempt, or None when its run or key was cancelled here."""
        key = payload["request"]["key"]
        with self._lock:
            if payload["run"] in self._cancelled_runs or key in self._cancelled_keys:
                return None
        conn = self._supervisors.start(payload["request"])
        with self._lock:
            self._running[key] = (conn, Running(key=key, run=payload["run"], owner=payload["owner"]))
            if payload["run"] in self._cancelled_runs:  # cancelled while we started it
                _send(conn, b"c")
        return conn

    def forget(self, key: str) -> None:
        with self._lock:
            self._running.pop(key, None)

    # -- used through Client.run (the worker's event loop: must not block) ---------------------

    def cancel(self, run: str, keys: Iterable[str] | None, force: bool) -> int:
        """Stop the run's attempts here (``keys``: only these); remember the run so that a late
        start refuses. The number of attempts told to stop."""
        message = b"k" if force else b"c"
        with self._lock:
            if keys is None:
                if run not in self._cancelled_runs:
                    self._cancelled_runs.append(run)
                    del self._cancelled_runs[:-_TOMBSTONES]
                chosen = [conn for conn, r in self._running.values() if r["run"] == run]
            else:
                wanted = set(keys)
                self._cancelled_keys |= wanted
                chosen = [conn for k, (conn, _) in self._running.items() if k in wanted]
        for conn in chosen:
            _send(conn, message)
        return len(chosen)

    def renew(self, run: str) -> int:
        """The run's client is alive: renew the lease of its attempts here."""
        with self._lock:
            chosen = [conn for conn, r in self._running.values() if r["run"] == run]
        for conn in chosen:
            _send(conn, b"l")
        return len(chosen)

    def attempts(self) -> list[Running]:
        with self._lock:
            return [r for _, r in self._running.values()]


def _send(conn: socket.socket, message: bytes) -> None:
    try:
        conn.send(message, socket.MSG_DONTWAIT)
    except OSError:  # the supervisor is gone, or its inbox is full of the same request
        pass


def _plugin(worker: Worker) -> AttemptsPlugin:
    plugin = worker.plugins.get(PLUGIN)
    if not isinstance(plugin, AttemptsPlugin):
        raise RuntimeError(f"the flowctl worker plugin {PLUGIN} is not registered on {worker.address}")
    return plugin


# -- the task ------------------------------------------------------------------------------------


def run_attempt(payload: Payload) -> Result:
    """Run one attempt through a supervisor; relay its output and result (see the module doc)."""
    worker = get_worker()
    key, topic = payload["request"]["key"], payload["topic"]
    claim_id = ""
    if payload["claim"]:
        lock = MultiLock(names=[f"flowctl-claim:{key}"])
        if not lock.acquire(blocking=False):
            result = Result(outcome="worker-lost", exit_code=None, started_at=0.0, duration=0.0,
                            error="it had started on a worker that was lost; Dask rescheduled it, flowctl did not run it again")
            worker.log_event(topic, {"k": key, "r": result, "w": worker.address})
            return result
        claim_id = lock.id
    plugin = _plugin(worker)
    try:
        conn = plugin.start(payload)
    except OSError as exc:
        result = Result(outcome="error", exit_code=None, started_at=0.0, duration=0.0,
                        error=f"could not start a supervisor on {worker.address}: {exc}")
        worker.log_event(topic, {"k": key, "r": result, "w": worker.address})
        return result
    if conn is None:
        result = Result(outcome="cancelled", exit_code=None, started_at=0.0, duration=0.0, error=None)
        worker.log_event(topic, {"k": key, "r": result, "w": worker.address})
        return result
    worker.log_event(topic, {"k": key, "s": worker.address, "c": claim_id, "p": os.getpid()})
    try:
        result = _relay(conn, worker, topic, key)
    finally:
        plugin.forget(key)
        conn.close()
    worker.log_event(topic, {"k": key, "r": result, "w": worker.address})
    return result


def _relay(conn: socket.socket, worker: Worker, topic: str, key: str) -> Result:
    while True:
        try:
            message = conn.recv(1 << 17)
        except OSError:
            message = b""
        if not message:
            return Result(outcome="error", exit_code=None, started_at=0.0, duration=0.0,
                          error=f"the attempt's supervisor on {worker.address} ended without a result")
        kind, body = message[:1], message[1:]
        if kind == b"o":
            worker.log_event(topic, {"k": key, "o": body})
        elif kind == b"r":
            result: Result = json.loads(body)
            return result


# -- Client.run targets (each gets the worker as ``dask_worker``) --------------------------------


def cancel_attempts(run: str, keys: list[str] | None, force: bool, dask_worker: Worker) -> int:
    return _plugin(dask_worker).cancel(run, keys, force)


def renew_lease(run: str, dask_worker: Worker) -> int:
    return _plugin(dask_worker).renew(run)


def list_attempts(dask_worker: Worker) -> list[Running]:
    plugin = dask_worker.plugins.get(PLUGIN)
    return plugin.attempts() if isinstance(plugin, AttemptsPlugin) else []


__all__ = [
    "PLUGIN", "AttemptsPlugin", "Payload", "Running", "cancel_attempts", "list_attempts", "renew_lease",
    "run_attempt",
]
