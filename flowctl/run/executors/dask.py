"""The Dask executor: each attempt runs on a worker of a Dask cluster (issue 16).

The scheduler, the state store, retries, logs and metrics stay with ``flowctl run``; only the
attempts travel. Owns: the run's cluster (``dask_cluster.RunCluster``: a ``LocalCluster``
started for the run, fixed or adaptive, or a connection to a shared scheduler), submitting each
attempt as ``dask_worker.run_attempt`` with ``retries=0``, ``pure=False`` and the key
``<run-id>:<step>:<attempt>`` (and the step's ``resources`` as Dask worker resources), writing
the output that streams back into the usual log files, turning what Dask reports into exactly
one ``AttemptResult`` per attempt, the lease, cancellation, orphans of a dead client, and the
``slots`` the scheduler may fill (the cluster's threads; an adaptive cluster grows with the
queue of ready attempts the scheduler reports).

What Dask does not do and flowctl must (see the issue's anchors): ``Future.cancel()`` never stops
a running task, so cancel and timeouts reach the attempt's supervisor (``run/supervise.py``)
through the worker (``Client.run(..., workers=[address])``); a lost worker's task is re-run
elsewhere below ``allowed-failures``, so the LocalCluster started here runs with
``allowed_failures=0`` (Dask then fails the task with ``KilledWorker``) and on a shared scheduler,
which flowctl must not reconfigure, each attempt claims its key before it starts
(``dask_worker``); either way the attempt ends ``worker-lost`` at once and the step's own
``retries`` decide. Only this process writes the state database.

Threads: Dask calls back on its event loop (topic events) and on a callback thread (futures);
both only put items in a queue and wake the scheduler's ``wait``, which does the work on the
scheduler's thread. The lease is renewed by a thread of its own, so a busy scheduler loop never
lets it lapse.
"""

from __future__ import annotations

import queue
import select
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, cast

from distributed import Future
from distributed.scheduler import KilledWorker

from flowctl.errors import StorageError
from flowctl.run.events import AttemptOutcome, RunId
from flowctl.run.executors.attemptlog import AttemptLog, write_note
from flowctl.run.executors.dask_cluster import RunCluster
from flowctl.run.executors.dask_settings import DaskSettings
from flowctl.run.executors.dask_worker import (
    Payload,
    Running,
    cancel_attempts,
    renew_lease,
    run_attempt,
)
from flowctl.run.executors.waker import Waker
from flowctl.run.ports import AttemptKey, AttemptResult, AttemptSpec, OutputCallback

if TYPE_CHECKING:
    from flowctl.run.supervise import Result

#: Called when an attempt starts on a worker (the worker's address), for the live view.
PlacedCallback = Callable[[AttemptKey, str], None]
#: Attempts handed to the cluster per worker thread: one running, one queued behind it.
PREFETCH = 2
_OUTCOMES = {o.value: o for o in AttemptOutcome}


class _Pending:
    """An attempt submitted and not yet reported."""

    __slots__ = ("cancelled", "future", "log", "spec", "worker")

    def __init__(self, spec: AttemptSpec, log: AttemptLog) -> None:
        self.spec = spec
        self.future: Future[Result] | None = None
        self.log = log
        self.worker = ""  # where it started ("" until the worker says so)
        self.cancelled = False  # we asked for it to stop


def attempt_key(key: AttemptKey) -> str:
    """The Dask key of an attempt: ``<run-id>:<step>:<attempt>`` (unique: never served a cached
    result, and a retry is a new key)."""
    return f"{key.run_id}:{key.step}:{key.attempt}"


class DaskExecutor:
    """Run attempts on a Dask cluster (see the module docstring). Use it as a context manager:
    entering starts (or connects to) the cluster, ``close`` stops everything of the run."""

    def __init__(
        self,
        settings: DaskSettings,
        *,
        run_id: RunId,
        owner: str,
        on_output: OutputCallback | None = None,
        on_placed: PlacedCallback | None = None,
    ) -> None:
        self.settings = settings
        self.run_id = run_id
        self.owner = owner  # which pipeline and state folder: tells this run's orphans apart
        self._on_output = on_output
        self._on_placed = on_placed
        self._topic = f"flowctl:{run_id}"
        self.cluster = RunCluster(settings)
        self._open: dict[str, _Pending] = {}
        # ("event", message) | ("cluster", message) | ("future", Future), from Dask's threads
        self._inbox: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        self._results: list[AttemptResult] = []
        self._waker = Waker()
        self._lock = threading.Lock()  # _placed_on, _demand: read by the lease and adapt threads
        self._placed_on: dict[str, int] = {}  # worker address -> attempts of ours running there
        self._demand = 0  # attempts running plus ready ones waiting: drives an adaptive cluster
        self._claims: list[str] = []
        self._storage_failure: StorageError | None = None  # a log could not be written
        self._stop = threading.Event()
        self._lease_thread: threading.Thread | None = None
        self._cancelling = False
        self._closed = False

    # -- the cluster -------------------------------------------------------------------------

    def __enter__(self) -> DaskExecutor:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Start the cluster (or connect to it) and the lease; see ``RunCluster.open``."""
        self.cluster.open({self._topic: self._on_event, "all": self._on_cluster_event}, self)
        self._lease_thread = threading.Thread(target=self._renew_leases, name="flowctl-lease", daemon=True)
        self._lease_thread.start()

    # -- the Executor protocol ---------------------------------------------------------------

    def submit(self, spec: AttemptSpec) -> None:
        client = self.cluster.client
        key = attempt_key(spec.key)
        pending = _Pending(spec, AttemptLog(spec.log_path, spec.key, self._on_output if spec.stream else None))
        self._open[key] = pending
        payload: Payload = {
            "request": {
                "key": key, "argv": list(spec.argv), "env": dict(spec.env), "cwd": spec.cwd,
                "timeout": spec.timeout, "grace": self.settings.grace, "lease": self.settings.lease,
                "secrets": list(spec.secrets), "stdout": spec.stdout_path,
            },
            "topic": self._topic, "run": self.run_id, "owner": self.owner,
            # A LocalCluster of ours fails a lost worker's task itself (allowed_failures=0), unless
            # it is adaptive: retiring a busy worker reschedules its tasks as "expected".
            "claim": not self.cluster.owned or self.settings.adaptive,
        }
        try:
            future = client.submit(
                run_attempt, payload, key=key, pure=False, retries=0,
                resources=dict(spec.resources) or None,
            )
        except Exception as exc:  # the scheduler is gone, the client closed: nothing started
            self._finish(key, AttemptOutcome.ERROR, error=f"could not submit it to the Dask scheduler: {exc}")
            return
        pending.future = future
        future.add_done_callback(self._on_future)

    def wait(self, timeout: float | None) -> Sequence[AttemptResult]:
        """See ``Executor.wait``. Raises ``StorageError`` once a log could not be written."""
        self._pump(timeout if not self._results else 0.0)
        if self._storage_failure is not None:
            raise self._storage_failure  # a log could not be written: the run must stop (exit 74)
        results, self._results = self._results, []
        return results

    def _pump(self, timeout: float | None) -> None:
        """Wait up to ``timeout`` for word from Dask, then act on all of it."""
        if self._inbox.empty() and timeout != 0.0:
            try:
                select.select([self._waker.fd], [], [], timeout)
            except InterruptedError:
                pass
        self._waker.drain()
        self._process()

    def wakeup(self) -> None:
        self._waker.wake()

    def cancel(self, key: AttemptKey, *, force: bool = False) -> None:
        dkey = attempt_key(key)
        pending = self._open.get(dkey)
        if pending is None:
            return
        pending.cancelled = True
        self._broadcast_cancel([dkey], force=force, workers=[pending.worker] if pending.worker else None)
        if not pending.worker and pending.future is not None:
            pending.future.cancel()  # still queued: Dask drops it (a late start refuses: see plugin)

    def cancel_all(self, *, force: bool = False) -> None:
        """Stop the run: its queued attempts never start, running ones are stopped by their
        supervisors (TERM, grace, KILL; at once with ``force``)."""
        self._cancelling = True
        for pending in self._open.values():
            pending.cancelled = True
        self._broadcast_cancel(None, force=force, workers=None)
        for pending in self._open.values():
            if not pending.worker and pending.future is not None:
                pending.future.cancel()

    def running(self) -> int:
        return len(self._open)

    def slots(self, backlog: int) -> int | None:
        """Attempts that may be out at once: two per thread of the connected workers, so that a
        worker finds its next attempt already queued when one ends instead of waiting for the
        round trip through the client (which costs more than a tiny step: see docs/dask.md).
        An adaptive cluster scales with ``backlog``, the ready attempts waiting for a slot."""
        with self._lock:
            self._demand = len(self._open) + backlog
        slots = PREFETCH * self.cluster.threads
        if self.settings.adaptive:
            return slots  # 0 while the cluster is empty: it grows, and wakes us (add-worker)
        return max(1, slots)

    def close(self) -> None:
        """Stop every attempt of the run that still runs, and the cluster if it is ours."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.cluster.is_open and self._open:
                self._stop_remaining()
        finally:
            self._stop.set()
            if self._lease_thread is not None:
                self._lease_thread.join(timeout=5)
            claims, self._claims = self._claims, []
            self.cluster.close(claims)
            self._waker.close()

    def _stop_remaining(self) -> None:
        self.cancel_all(force=True)
        deadline = time.monotonic() + self.settings.grace + 10.0
        while any(p.worker for p in self._open.values()) and time.monotonic() < deadline:
            self._pump(0.2)
        self._results.clear()

    # -- orphans of a dead client ------------------------------------------------------------

    def orphans(self) -> list[Running]:
        """Attempts of earlier runs of this pipeline still alive on the workers (their client is
        gone: this run holds the pipeline's lock)."""
        return [a for a in self.cluster.attempts() if a["owner"] == self.owner and a["run"] != self.run_id]

    def stop_orphans(self, orphans: Sequence[Running], *, wait: float | None = 0.0) -> list[Running]:
        """Wait up to ``wait`` seconds (None: as long as they run) for them to end by themselves,
        then stop what is left (TERM, grace, KILL); what had to be stopped. While we wait we
        renew their leases: their client is gone, and without a renewal their supervisors would
        stop them when the lease runs out, which would turn ``--orphans wait`` into a kill."""
        deadline = None if wait is None else time.monotonic() + wait
        left = list(orphans)
        while left and (deadline is None or time.monotonic() < deadline):
            for run in sorted({a["run"] for a in left}):
                self.cluster.on_workers(renew_lease, run)
            time.sleep(0.2 if deadline is None else min(0.2, max(0.0, deadline - time.monotonic())))
            left = self.orphans()
        if left:
            for run in sorted({a["run"] for a in left}):
                self.cluster.on_workers(cancel_attempts, run, None, True)
            deadline = time.monotonic() + self.settings.grace + 10.0
            while self.orphans() and time.monotonic() < deadline:
                time.sleep(0.1)
        return left

    # -- what Dask tells us (its threads: queue it, wake the scheduler) ----------------------

    def _on_event(self, event: tuple[float, object]) -> None:
        self._inbox.put(("event", event[1]))
        self.wakeup()

    def _on_cluster_event(self, event: tuple[float, object]) -> None:
        msg = event[1]
        if isinstance(msg, dict) and msg.get("action") in ("add-worker", "remove-worker"):
            self._inbox.put(("cluster", msg))
            self.wakeup()

    def _on_future(self, future: Future[Result]) -> None:
        self._inbox.put(("future", future))
        self.wakeup()

    # -- ... and on the scheduler's thread ---------------------------------------------------

    def _process(self) -> None:
        membership = False
        while True:
            try:
                kind, item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Future):
                self._future_done(item)
            elif isinstance(item, dict) and kind == "event":
                self._attempt_event(item)
            elif isinstance(item, dict):
                membership = True
                if item.get("action") == "remove-worker":
                    self._worker_removed(str(item.get("worker", "")))
        if membership and self.cluster.is_open:
            try:
                self.cluster.refresh_workers()
            except Exception:  # the scheduler is unreachable: its futures will say so
                pass

    def _attempt_event(self, msg: Mapping[str, object]) -> None:
        key = str(msg.get("k", ""))
        pending = self._open.get(key)
        if pending is None:
            return
        if "o" in msg:
            data = msg["o"]
            pending.log.write(data if isinstance(data, bytes) else str(data).encode())
            if pending.log.failure is not None and self._storage_failure is None:
                self._storage_failure = pending.log.failure
        elif "s" in msg:
            pending.worker = str(msg["s"])
            with self._lock:
                self._placed_on[pending.worker] = self._placed_on.get(pending.worker, 0) + 1
            if msg.get("c"):
                self._claims.append(str(msg["c"]))
            if self._on_placed is not None:
                self._on_placed(pending.spec.key, pending.worker)
            if pending.cancelled:  # it started after we cancelled it: stop it there
                self._broadcast_cancel([key], force=False, workers=[pending.worker])
        elif "r" in msg:
            result = cast("Result", msg["r"])
            self._finish(
                key, _OUTCOMES.get(result.get("outcome", ""), AttemptOutcome.ERROR),
                exit_code=result.get("exit_code"), started_at=result.get("started_at") or None,
                duration=result.get("duration"), error=result.get("error"), host=str(msg.get("w", "")),
            )

    def _future_done(self, future: Future[Result]) -> None:
        key = str(future.key)
        pending = self._open.get(key)
        if pending is None:
            return  # reported already (its result event came first, as it should)
        status = future.status
        if status == "finished":
            try:
                result = future.result()
            except Exception as exc:
                self._finish(key, AttemptOutcome.ERROR, error=f"its result could not be read: {exc}")
                return
            self._finish(key, _OUTCOMES.get(result.get("outcome", ""), AttemptOutcome.ERROR),
                         exit_code=result.get("exit_code"), duration=result.get("duration"),
                         error=result.get("error"), host=pending.worker)
        elif status == "cancelled":
            if pending.cancelled:
                self._finish(key, AttemptOutcome.CANCELLED)
            else:
                self._finish(key, AttemptOutcome.LOST, error="Dask cancelled it (the scheduler or the connection to "
                             "it was lost)")
        else:
            self._future_error(key, pending, future)

    def _future_error(self, key: str, pending: _Pending, future: Future[Result]) -> None:
        try:
            exc = future.exception()
        except Exception as why:
            exc = why
        if isinstance(exc, KilledWorker):
            where = exc.last_worker.address if exc.last_worker is not None else pending.worker
            self._finish(key, AttemptOutcome.LOST, error=f"worker {where} died while running it", host=where)
            return
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, (ModuleNotFoundError, ImportError)) or ("flowctl" in text and "No module" in text):
            text += " (is flowctl installed on every worker? pip install 'flowctl[dask]')"
        self._finish(key, AttemptOutcome.ERROR, error=f"the worker could not run it: {text}", host=pending.worker)

    def _worker_removed(self, address: str) -> None:
        """A worker left: what had started there is lost now (never waited for, never re-run)."""
        for key, pending in list(self._open.items()):
            if pending.worker == address:
                if pending.future is not None:
                    pending.future.cancel()  # a shared scheduler would reschedule it
                self._finish(key, AttemptOutcome.LOST, error=f"worker {address} went away while it ran")

    def _finish(
        self,
        key: str,
        outcome: AttemptOutcome,
        *,
        exit_code: int | None = None,
        started_at: float | None = None,
        duration: float | None = None,
        error: str | None = None,
        host: str = "",
    ) -> None:
        pending = self._open.pop(key, None)
        if pending is None:
            return
        if pending.worker:
            with self._lock:
                left = self._placed_on.get(pending.worker, 1) - 1
                if left > 0:
                    self._placed_on[pending.worker] = left
                else:
                    self._placed_on.pop(pending.worker, None)
        log = pending.log
        if outcome is AttemptOutcome.ERROR and error and not log.logged:
            log.failure = log.failure or write_note(pending.spec.key, log.path, f"could not start: {error}")
            log.logged = log.failure is None
        if log.failure is not None and self._storage_failure is None:
            self._storage_failure = log.failure
        log.close()
        spec = pending.spec
        self._results.append(
            AttemptResult(
                key=spec.key, outcome=outcome, exit_code=exit_code,
                started_at=started_at or time.time(), duration=duration or 0.0,
                host=host or pending.worker, error=error if error else log.error,
                tail=log.tail() if outcome is not AttemptOutcome.OK else (), logged=log.logged,
            )
        )

    # -- cancelling and the lease ------------------------------------------------------------

    def _broadcast_cancel(self, keys: list[str] | None, *, force: bool, workers: list[str] | None) -> None:
        self.cluster.on_workers(cancel_attempts, self.run_id, keys, force, workers=workers)

    def _renew_leases(self) -> None:
        every = max(0.1, self.settings.lease / 3)
        while not self._stop.wait(every):
            with self._lock:
                workers = list(self._placed_on)
            if workers:
                self.cluster.on_workers(renew_lease, self.run_id, workers=workers)

    def demand(self) -> int:
        with self._lock:
            return self._demand

    def busy_workers(self) -> set[str]:
        with self._lock:
            return set(self._placed_on)



__all__ = ["PREFETCH", "DaskExecutor", "PlacedCallback", "attempt_key"]
