"""The scheduler: runs a plan's selected steps through an executor, single-threaded.

Owns: which step starts when (a step is ready once every step it needs that is part of the run
has ended well; ready steps start in a stable order, highest ``Plan.priority`` first, i.e. the
critical path, then plan order), the concurrency limit, retries (exponential backoff from
``retry_delay`` with "equal jitter", capped by ``retry_max_delay``, limited to
``retry_on_exit_codes`` when given), remediation and the final attempt, ``continue_on_error``,
skipping what depends on a failure, ``--fail-fast``, and cancellation on SIGINT/SIGTERM/SIGHUP
(a second signal kills at once). It reports everything as events (``run.events``): each turn of
the loop records its events in the ``RunStore`` and flushes it, and only then starts the
attempts that turn decided on and hands the events to ``emit``. So a checkpoint always precedes
what the user sees, a finished step is saved before what it unblocks starts, and an attempt is
recorded as running before its process exists: a ``kill -9`` of the runner loses at most the
steps recorded as running (issue 12).

It never prints, never touches SQLite or rich, and never assumes an attempt runs on this
machine: processes, logs and timeouts belong to the ``Executor``. ``foreach`` steps: ``fanrun.py``.
"""

from __future__ import annotations

import heapq
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from types import FrameType

from flowctl.masking import mask_text
from flowctl.run.chaos import LEDGER, LEDGER_ENV
from flowctl.run.events import (
    AttemptFinished,
    AttemptKind,
    AttemptOutcome,
    AttemptStarted,
    Event,
    RetryScheduled,
    RunFinished,
    RunId,
    RunStarted,
    RunStatus,
    StepFinished,
    StepReady,
    StepStatus,
)
from flowctl.run.fanrun import FanOutSteps, backoff
from flowctl.run.fanrun import retryable as _retryable
from flowctl.run.options import InvocationLike, PlanLike, Reuse, RunOptions, RunResult, new_run_id
from flowctl.run.ports import AttemptKey, AttemptResult, AttemptSpec, Executor, RunStore
from flowctl.run.resources import ResourcePool
from flowctl.run.stepstate import StepState as _State

#: What ``signal.signal`` returns and takes back: a handler, SIG_DFL/SIG_IGN, or None.
_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


class Scheduler(FanOutSteps):
    """Run one plan once (see the module docstring). ``run`` returns a ``RunResult``."""

    def __init__(
        self,
        plan: PlanLike,
        invocations: Mapping[str, InvocationLike],
        executor: Executor,
        store: RunStore,
        emit: Callable[[Event], None],
        options: RunOptions,
        *,
        remediations: Mapping[str, InvocationLike | None] | None = None,
        run_id: RunId | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.plan = plan
        self.run_id = run_id or new_run_id()
        self._inv = invocations
        self._remediations = remediations or {}
        self._executor = executor
        self._store = store
        self._emit = emit
        # An emitter with a ``flush`` (the CLI's fan-out) may buffer: flushed after each turn.
        self._emit_flush: Callable[[], None] | None = getattr(emit, "flush", None)
        self._opt, self._fingerprints = options, dict(options.fingerprints)  # see _start
        self._rng = rng or random.Random()
        self._concurrency = max(1, options.concurrency)
        # Issue 16: resource-counting limits (local executor) and an executor whose capacity
        # changes (an adaptive Dask cluster: ``slots``, see ``ports.SlotsReporting``).
        self._pool = ResourcePool(options.resources) if options.resources else None
        self._slots: Callable[[int], int | None] | None = getattr(executor, "slots", None)
        self._events: list[Event] = []
        self._to_submit: list[AttemptSpec] = []  # decided this turn, started after the checkpoint
        self._ready: list[tuple[int, int, _State]] = []
        self._timers: list[tuple[float, int, _State]] = []
        self._running = 0
        self._stopping = ""  # why nothing new starts any more
        self._interrupted = False
        self._signals = 0
        self._signals_handled = 0
        self._root_failure: str | None = None
        self._chaos = options.chaos
        steps = self._steps = plan.pipeline.steps
        selected = plan.selected
        self._states: dict[str, _State] = {
            sid: _State(steps[sid], i, plan.priority.get(sid, 0)) for i, sid in enumerate(selected)
        }
        for sid, before in options.attempts_before.items():  # `dlq replay`: numbers go on in its run
            if sid in self._states:
                self._states[sid].attempts = before
        for st in self._states.values():
            for need in st.step.needs:
                up = self._states.get(need)
                if up is not None:  # a need outside the selection counts as done (--only/--from)
                    st.waiting += 1
                    up.dependents.append(st)
        self._stream_setup()  # items from a step's output, streamed (run/streamrun.py)

    # -- public ------------------------------------------------------------------------------

    def interrupt(self, force: bool = False) -> None:
        """Stop the run as Ctrl-C does (``force``: kill at once). Safe from a signal handler."""
        self._signals = max(self._signals + 1, 2 if force else 1)
        self._executor.wakeup()

    def run(self) -> RunResult:
        """Run every selected step; returns how each ended. Raises only on internal errors."""
        previous = self._install_signals()
        try:
            return self._run()
        except BaseException:
            self._executor.cancel_all(force=True)
            raise
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    # -- the loop ----------------------------------------------------------------------------

    def _run(self) -> RunResult:
        t0 = time.monotonic()
        opt = self._opt
        self._push(
            RunStarted(
                run_id=self.run_id, pipeline=self.plan.pipeline.name, at=time.time(),
                steps=tuple(self._states), params=opt.params, selection=opt.selection.record(),
                concurrency=self._concurrency, pipeline_path=self.plan.pipeline.path,
                resumed_from=opt.resumed_from, provenance=opt.provenance, fire_time=opt.fire_time,
                chaos=opt.chaos.settings.text if opt.chaos is not None else "",
            )
        )
        reused = [(self._states[sid], r) for sid, r in opt.reuse.items() if sid in self._states]
        for st, r in reused:  # mark them all first: a reused step must never look ready
            st.status = r.status
        for st, r in reused:
            self._finish(st, r.status, reason=r.reason, fingerprint=r.fingerprint)
        for st in self._states.values():
            if st.status is StepStatus.PENDING and st.waiting == 0:
                self._make_ready(st)
        executor = self._executor
        while True:
            self._start_ready()
            self._flush()
            if self._running == 0 and not self._timers and not self._ready:
                break
            timeout = max(0.0, self._timers[0][0] - time.monotonic()) if self._timers else None
            results = executor.wait(timeout)
            if self._signals > self._signals_handled:
                self._on_signal()
            for result in results:
                self._on_result(result)
            if self._streams:
                self._feed_streams()
            if self._timers:
                self._fire_timers()
        why = self._not_started()
        for st in self._states.values():
            if st.status in (StepStatus.PENDING, StepStatus.READY):
                self._finish(st, StepStatus.CANCELLED, reason=why)
        counts = Counter(st.status.value for st in self._states.values())
        if self._interrupted:
            status = RunStatus.INTERRUPTED
        elif counts.get(StepStatus.FAILED.value) or counts.get(StepStatus.SKIPPED.value):
            status = RunStatus.FAILED
        elif counts.get(StepStatus.CANCELLED.value):
            status = RunStatus.CANCELLED
        else:
            status = RunStatus.SUCCEEDED
        duration = time.monotonic() - t0
        self._push(
            RunFinished(
                run_id=self.run_id, at=time.time(), status=status, duration=duration,
                counts=dict(counts), root_failure=self._root_failure,
            )
        )
        self._flush()
        return RunResult(
            run_id=self.run_id, status=status,
            steps={sid: st.status for sid, st in self._states.items()},
            counts=dict(counts), duration=duration, root_failure=self._root_failure,
        )

    def _push(self, event: Event) -> None:
        self._events.append(event)

    def _flush(self) -> None:
        """Checkpoint this turn's events, then start its attempts, then show the events (STYLE:
        store before sinks; issue 12: save finished results and record a start before the
        process exists)."""
        if self._events:
            events, self._events = self._events, []
            record = self._store.record
            for event in events:
                record(event)
            self._store.flush()
            chaos = self._chaos
            if chaos is not None and chaos.kill_due:  # its chosen start is committed
                self._show(events)  # what led here reaches a cron log before the runner dies (trial 17)
                events = []
                chaos.kill_runner()
            if self._to_submit:
                specs, self._to_submit = self._to_submit, []
                submit = self._executor.submit
                for spec in specs:
                    submit(spec)
            self._show(events)
        elif self._emit_flush is not None:  # also pushes out output lines streamed during the wait
            self._emit_flush()

    def _show(self, events: list[Event]) -> None:
        emit = self._emit
        for event in events:
            emit(event)
        if self._emit_flush is not None:
            self._emit_flush()

    # -- starting ----------------------------------------------------------------------------

    def _make_ready(self, st: _State) -> None:
        if self._stopping:
            return
        st.status = StepStatus.READY
        heapq.heappush(self._ready, (-st.priority, st.index, st))
        self._push(StepReady(self.run_id, st.id, time.time(), queue_depth=len(self._ready)))

    def _start_ready(self) -> None:
        limit = self._concurrency
        if self._slots is not None:
            slots = self._slots(len(self._ready))
            if slots is not None:
                limit = min(limit, slots)
        pool = self._pool
        waiting: list[tuple[int, int, _State]] = []  # ready, but what they hold is taken
        while self._ready and self._running < limit and not self._stopping:
            item = heapq.heappop(self._ready)
            if pool is not None:
                if not pool.fits(item[2].step.resources):
                    waiting.append(item)
                    continue
                pool.take(item[2].step.resources)
            if item[2].step.foreach is not None:
                self._fan_slot(item[2])  # one item (or batch) per slot
                continue
            self._start(item[2])
        for item in waiting:
            heapq.heappush(self._ready, item)

    def _start(self, st: _State) -> None:
        st.attempts += 1
        n = st.attempts
        step = st.step
        kind = st.kind
        log_path = self._log_path(st.id, kind, n)
        if kind is AttemptKind.REMEDIATE:
            inv = self._remediations[st.id]
            assert inv is not None
            timeout = step.remediate.timeout if step.remediate else None
        else:
            inv = self._inv[st.id]
            timeout = step.timeout
            if kind is AttemptKind.ATTEMPT:
                st.regular += 1
        env = dict(inv.env)  # additions: the executor owns the base (ours, or a worker's)
        env["FLOWCTL_RUN_ID"] = self.run_id
        env["FLOWCTL_STEP"] = st.id
        env["FLOWCTL_ATTEMPT"] = str(n)
        env[LEDGER_ENV] = f"{self._opt.logs_dir}/{LEDGER}"  # side effects, for `chaos check` (issue 17)
        env.update(self._results_env(step))  # ${{ needs.S.results }} (issue 15)
        key = AttemptKey(self.run_id, st.id, n)
        now = time.monotonic()
        if st.first_start is None:  # its inputs as it sees them, after its upstream ran:
            st.first_start = now  # the fingerprint it records (state.session.StartFingerprints)
            if self._opt.fingerprint_at_start is not None:
                self._fingerprints[st.id] = self._opt.fingerprint_at_start(st.id)
        st.status = StepStatus.RUNNING
        self._running += 1
        self._stream_start(st)
        secrets = tuple(inv.secrets)
        command = mask_text(inv.display, secrets) if secrets else inv.display
        chaos = self._chaos if kind is not AttemptKind.REMEDIATE else None
        fault = chaos.decide(st.id, n, timeout=timeout) if chaos is not None else ""
        self._push(
            AttemptStarted(
                run_id=self.run_id, step=st.id, attempt=n, at=time.time(),
                max_attempts=step.max_attempts + self._opt.attempts_before.get(st.id, 0),  # `dlq replay`: 2/2, not 2/1
                kind=kind, command=command,
                fingerprint=self._fingerprints.get(st.id, ""), log_path=log_path, injected=fault,
            )
        )
        spec = AttemptSpec(
            key=key, argv=tuple(inv.argv), env=env, cwd=inv.cwd, log_path=log_path,
            timeout=timeout, kind=kind, secrets=secrets, stream=self._opt.stream,
            resources=step.resources, stdout_path=self._stdout_path(st, kind),
        )
        # started by _flush, once the AttemptStarted above is saved
        self._to_submit.append(chaos.wrap(spec, fault) if chaos is not None and fault else spec)

    def _log_path(self, step: str, kind: AttemptKind, attempt: int) -> str:
        """Where attempt ``attempt`` of ``step`` writes: ``<logs>/<step>/<n>.log`` or ``remediate.log``."""
        name = "remediate" if kind is AttemptKind.REMEDIATE else str(attempt)
        return f"{self._opt.logs_dir}/{step}/{name}.log"

    # -- results -----------------------------------------------------------------------------

    def _on_result(self, r: AttemptResult) -> None:
        st = self._states[r.key.step]
        if st.fan is not None and r.key.attempt in st.fan.running:
            self._on_unit(st, st.fan, r)
            return
        self._running -= 1
        if self._pool is not None:
            self._pool.give(st.step.resources)
        st.last_end = time.monotonic()
        kind = st.kind
        # "" when it printed nothing: it has no log file
        log_path = self._log_path(st.id, kind, r.key.attempt) if r.logged else ""
        self._push(
            AttemptFinished(
                run_id=self.run_id, step=st.id, attempt=r.key.attempt, at=time.time(),
                outcome=r.outcome, exit_code=r.exit_code, duration=r.duration, kind=kind,
                log_path=log_path, error=r.error, tail=r.tail, host=r.host,
            )
        )
        if self._stream_ended(st, r):  # its output had a line that is not JSON
            return
        step = st.step
        if kind is AttemptKind.REMEDIATE:
            # The final attempt follows whatever the remediation's outcome (both are recorded).
            if r.outcome is AttemptOutcome.CANCELLED or self._stopping:
                self._finish(st, StepStatus.CANCELLED, reason=self._cancelled_running())
                return
            st.kind = AttemptKind.FINAL
            self._make_ready(st)
            return
        if r.outcome is AttemptOutcome.OK:
            self._finish(st, StepStatus.SUCCEEDED, exit_code=r.exit_code)
            return
        st.exit_code = r.exit_code
        if r.outcome is AttemptOutcome.CANCELLED:
            self._finish(st, StepStatus.CANCELLED, exit_code=r.exit_code, reason=self._cancelled_running())
            return
        if self._stopping:
            self._finish_failed(st, r)
            return
        if kind is AttemptKind.ATTEMPT and st.regular < step.max_attempts and _retryable(step, r):
            delay = backoff(step, st.regular, self._rng)
            heapq.heappush(self._timers, (time.monotonic() + delay, st.index, st))
            st.status = StepStatus.PENDING
            self._push(RetryScheduled(self.run_id, st.id, st.attempts + 1, delay, time.time()))
            return
        if kind is AttemptKind.ATTEMPT and self._remediations.get(st.id) is not None:
            st.kind = AttemptKind.REMEDIATE
            self._make_ready(st)
            return
        self._finish_failed(st, r)

    def _finish_failed(self, st: _State, r: AttemptResult) -> None:
        if r.outcome is AttemptOutcome.TIMEOUT:
            reason = "timed out"
        elif r.outcome is AttemptOutcome.ERROR:
            reason = r.error or "could not start"
        elif r.outcome is AttemptOutcome.LOST:
            reason = "worker-lost"
        else:
            reason = f"exit {r.exit_code}"
        allowed = st.step.continue_on_error
        self._finish(
            st, StepStatus.FAILED_ALLOWED if allowed else StepStatus.FAILED,
            exit_code=r.exit_code, reason=reason,
        )

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, st = heapq.heappop(self._timers)
            if st.fan is not None:
                self._fan_retry_due(st)
            elif st.status is StepStatus.PENDING:
                self._make_ready(st)

    # -- ending ------------------------------------------------------------------------------

    def _finish(
        self,
        st: _State,
        status: StepStatus,
        *,
        exit_code: int | None = None,
        reason: str = "",
        fingerprint: str = "",
    ) -> None:
        st.status = status
        st.reason = reason
        duration = st.last_end - st.first_start if st.first_start is not None else 0.0
        self._push(
            StepFinished(
                run_id=self.run_id, step=st.id, status=status, at=time.time(),
                attempts=st.attempts, duration=duration, reason=reason,
                fingerprint=fingerprint or self._fingerprints.get(st.id, ""),
                exit_code=exit_code,
            )
        )
        if status.done_ok:
            for dep in st.dependents:
                if self._stream_released(st, dep):
                    continue  # it stopped waiting when st started
                dep.waiting -= 1
                if dep.waiting == 0 and dep.status is StepStatus.PENDING:
                    self._make_ready(dep)
        elif status is StepStatus.FAILED:
            if self._root_failure is None:
                self._root_failure = st.id
            self._skip_downstream(st)
            if self._opt.fail_fast and not self._stopping:
                self._stop(f"--fail-fast after {st.id} failed", force=False)

    def _skip_downstream(self, failed: _State) -> None:
        todo = list(failed.dependents)
        reason = f"upstream {failed.id} failed"
        while todo:
            st = todo.pop()
            if st.status is not StepStatus.PENDING:
                continue
            self._finish(st, StepStatus.SKIPPED, reason=reason)
            todo.extend(st.dependents)

    def _stop(self, why: str, *, force: bool) -> None:
        """Start nothing more; cancel what runs; what waits for a retry or a slot is cancelled.
        ``why``: the cause ("interrupted", "--fail-fast after X failed")."""
        self._stopping = why
        self._executor.cancel_all(force=force)
        ready, self._ready = self._ready, []
        timers, self._timers = self._timers, []
        reason = self._not_started()
        for _, _, st in ready + timers:
            if st.status in (StepStatus.READY, StepStatus.PENDING):
                self._finish(st, StepStatus.CANCELLED, reason=self._not_retried(st) if st.attempts else reason)
        self._stop_fans(list(self._states.values()))

    # The words of a cancelled step say whether it was running (its work may be half done) or
    # never started (issue 12: a step stopped while it ran was shown "interrupted before it started").
    def _cancel_words(self, interrupted: str, cancelled: str) -> str:
        """``interrupted`` after a signal, else ``cancelled`` with the cause of the stop."""
        why = self._stopping
        return interrupted if why == _INTERRUPTED else f"{cancelled}: {why}" if why else cancelled

    def _not_started(self) -> str:
        return self._cancel_words("interrupted before it started", "not started")

    def _not_retried(self, st: _State) -> str:
        """A step stopped while it waited to retry: it ran, and did not start again."""
        words = self._cancel_words("interrupted while waiting to retry", "cancelled while waiting to retry")
        return f"{words} (after {st.attempts} attempt(s))"

    def _cancelled_running(self) -> str:
        return self._cancel_words("interrupted while it ran", "cancelled while it ran")

    # -- signals -----------------------------------------------------------------------------

    def _install_signals(self) -> dict[int, _Handler]:
        if not self._opt.handle_signals or threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, _Handler] = {}
        # SIGHUP too: a closed terminal must not leave steps running without their runner.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, lambda signum, frame: self.interrupt())
        return previous

    def _on_signal(self) -> None:
        count, self._signals_handled = self._signals, self._signals
        self._interrupted = True
        if not self._stopping:
            self._stop(_INTERRUPTED, force=count >= 2)
        else:
            self._executor.cancel_all(force=count >= 2)


_INTERRUPTED = "interrupted"  # the cause of a stop by SIGINT / SIGTERM / SIGHUP


__all__ = ["InvocationLike", "PlanLike", "Reuse", "RunOptions", "RunResult", "Scheduler", "new_run_id"]
