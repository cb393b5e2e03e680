"""The scheduler's side of ``foreach`` steps: units in slots, per-unit retries, stopping.

A mixin of ``Scheduler`` (it shares its loop, slots, timers and checkpoint order): a foreach
step, when it first gets a slot, reads its items (``run/foreach.py``); then, while it has units
to start and fewer than its ``max_concurrent`` running, it waits in the ready queue like a step,
and each slot it gets starts one unit as one attempt of the executor (so items count against
``-j`` and are recorded before their process exists, as attempts are). A unit that fails is
retried alone after the step's back-off; one that fails its last attempt is dead-lettered and
counts against ``tolerated_failure``; past it no new unit starts (``fail_fast`` also cancels the
running ones). When no unit is left the step ends: succeeded within the tolerance (0 items too),
else failed with reason ``exceeded-tolerated-failures``; its results are exported first.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from flowctl.masking import mask_text
from flowctl.run.chaos import LEDGER, LEDGER_ENV, ChaosRun
from flowctl.run.events import AttemptKind, AttemptOutcome, Event, ItemStatus, RunId, StepStatus
from flowctl.run.foreach import RESULTS, FanOut, Unit
from flowctl.run.ports import AttemptKey, AttemptResult, AttemptSpec, Executor
from flowctl.run.streamrun import StreamSteps
from flowctl.spec import expr
from flowctl.spec.foreach import ItemFault
from flowctl.spec.model import Step

if TYPE_CHECKING:
    from flowctl.run.options import InvocationLike, RunOptions
    from flowctl.run.resources import ResourcePool
    from flowctl.run.stepstate import StepState as _State

EXCEEDED = "exceeded-tolerated-failures"


class FanOutSteps(StreamSteps):
    """Mixin: see the module docstring. The attributes below are the ``Scheduler``'s. Items from
    a step's output, and streaming them: ``StreamSteps`` (``run/streamrun.py``)."""

    run_id: RunId
    _opt: RunOptions
    _inv: Mapping[str, InvocationLike]
    _executor: Executor
    _pool: ResourcePool | None
    _ready: list[tuple[int, int, _State]]
    _timers: list[tuple[float, int, _State]]
    _to_submit: list[AttemptSpec]
    _fingerprints: dict[str, str]
    _running: int
    _concurrency: int
    _stopping: str
    _rng: random.Random
    _steps: Mapping[str, Step]
    _remediations: Mapping[str, InvocationLike | None]
    _chaos: ChaosRun | None

    if TYPE_CHECKING:
        def _push(self, event: Event) -> None: ...
        def _finish(self, st: _State, status: StepStatus, *, exit_code: int | None = None, reason: str = "",
                    fingerprint: str = "") -> None: ...
        def _cancelled_running(self) -> str: ...

    def _results_env(self, step: Step) -> dict[str, str]:
        """The path of each needed foreach step's ``results.jsonl``: this run's, or the run's it
        was reused from."""
        steps = self._steps
        return {expr.results_var(n): self._opt.results_paths.get(n) or f"{self._opt.logs_dir}/{n}/{RESULTS}"
                for n in step.needs if n in steps and steps[n].foreach is not None}

    def _fan_slot(self, st: _State) -> None:
        """``st`` (a foreach step) got a slot: read its items the first time, start a unit."""
        fan = st.fan
        if fan is None:
            fan = self._fan_begin(st)
            if fan is None:
                self._give(st)
                return
        fan.queued = False
        step = st.step
        if not fan.pending or fan.stopped or len(fan.running) >= fan.limit:
            self._give(st)
            return
        unit = fan.pending.popleft()
        remedy = self._remediations.get(st.id) if unit.remedy == "next" else None
        kind, timeout, inv = AttemptKind.ATTEMPT, step.timeout, fan.inv
        chaos, item, fault = self._chaos, unit_key(unit), ""
        if remedy is not None and step.remediate is not None:  # the item's remediation, then a final attempt
            kind, timeout, inv = AttemptKind.REMEDIATE, step.remediate.timeout, remedy
            argv, extra = fan.remediate(unit, remedy)
        else:
            event, argv, extra = fan.start(unit, time.time())
            fault = chaos.decide(st.id, unit.attempts, item, timeout=step.timeout) if chaos is not None else ""
            if fault:  # items are attempts too (issue 17): decided by their key and their own attempt
                event = replace(event, injected=fault)
            self._push(event)
        st.attempts += 1
        st.status = StepStatus.RUNNING
        self._running += 1
        env = dict(inv.env)  # additions: the executor owns the base (ours, or a worker's)
        env.update(extra)
        env["FLOWCTL_RUN_ID"] = self.run_id
        env["FLOWCTL_STEP"] = st.id
        env["FLOWCTL_ATTEMPT"] = str(unit.base + unit.attempts)
        env[LEDGER_ENV] = f"{self._opt.logs_dir}/{LEDGER}"  # side effects, for `chaos check` (issue 17)
        env.update(self._results_env(step))
        spec = AttemptSpec(
            key=AttemptKey(fan.run_id, st.id, unit.seq), argv=argv, env=env, cwd=inv.cwd, log_path=unit.log_path,
            timeout=timeout, kind=kind, secrets=tuple(inv.secrets), stream=self._opt.stream,
            resources=step.resources,
        )
        self._to_submit.append(chaos.wrap(spec, fault, item, unit.attempts) if chaos is not None and fault else spec)
        self._fan_requeue(st)

    def _give(self, st: _State) -> None:
        if self._pool is not None:
            self._pool.give(st.step.resources)

    def _fan_begin(self, st: _State) -> FanOut | None:
        inv = self._inv[st.id]
        st.first_start = time.monotonic()
        if self._opt.fingerprint_at_start is not None:  # its inputs as it sees them (state.session)
            self._fingerprints[st.id] = self._opt.fingerprint_at_start(st.id)
        st.status = StepStatus.RUNNING
        try:
            output, stream = self._stream_source(st)  # items_from: {step: S}
            fan = FanOut(self.run_id, st.step, inv, self._opt.logs_dir, concurrency=self._concurrency,
                         done=self._opt.items_done.get(st.id), carried=self._opt.items_carried.get(st.id),
                         replayed=self._opt.items_replayed.get(st.id), producer_output=output, stream=stream)
            for event in fan.expand(time.time()):
                self._push(event)
        except ItemFault as exc:
            st.last_end = time.monotonic()
            self._finish(st, StepStatus.FAILED, reason=mask_text(str(exc), tuple(inv.secrets)))
            return None
        st.fan = fan
        if fan.tail is not None:  # a stream: what the producer printed so far (it may end the step)
            self._stream_feed(st, fan, check=False)
            return fan if st.status is StepStatus.RUNNING else None
        if fan.done:
            self._fan_finish(st, fan)
            return None
        return fan

    def _fan_requeue(self, st: _State) -> None:
        fan = st.fan
        if fan is None or fan.queued or self._stopping or fan.stopped:
            return
        if fan.pending and len(fan.running) < fan.limit:
            fan.queued = True
            heapq.heappush(self._ready, (-st.priority, st.index, st))

    def _on_unit(self, st: _State, fan: FanOut, r: AttemptResult) -> None:
        unit = fan.running[r.key.attempt]
        self._running -= 1
        self._give(st)
        st.last_end = time.monotonic()
        now = time.time()
        if unit.remedy == "running":  # whatever its outcome, the item's final attempt follows
            unit.remedy = "done"
            fan.running.pop(unit.seq, None)
            if r.outcome is AttemptOutcome.CANCELLED or fan.stopped or self._stopping:
                self._fan_dropped(st, fan, [unit])
            else:
                fan.pending.appendleft(unit)
            self._fan_check(st, fan)
            return
        common = {"exit_code": r.exit_code, "duration": r.duration, "error": r.error, "tail": r.tail,
                  "logged": r.logged}
        if r.outcome is AttemptOutcome.OK:
            self._push(fan.ended(unit, ItemStatus.SUCCEEDED, now, **common))  # type: ignore[arg-type]
        elif r.outcome is AttemptOutcome.CANCELLED:
            self._push(fan.ended(unit, ItemStatus.CANCELLED, now, **common))  # type: ignore[arg-type]
        elif unit.attempts < st.step.max_attempts and not fan.stopped and not self._stopping and retryable(st.step, r):
            self._push(fan.ended(unit, ItemStatus.RETRYING, now, **common))  # type: ignore[arg-type]
            fan.retrying.append(unit)
            delay = backoff(st.step, unit.attempts, self._rng)
            unit.due = time.monotonic() + delay
            heapq.heappush(self._timers, (unit.due, st.index, st))
        elif fan.splits(unit) and not fan.stopped and not self._stopping:
            # batch.split_on_failure: its items are tried one by one, to find the bad ones
            self._push(fan.ended(unit, ItemStatus.RETRYING, now, **common))  # type: ignore[arg-type]
            fan.split(unit)
        elif not unit.remedy and self._remediations.get(st.id) is not None and not fan.stopped and not self._stopping:
            self._push(fan.ended(unit, ItemStatus.RETRYING, now, **common))  # type: ignore[arg-type]
            unit.remedy = "next"  # its remediation, then one final attempt (as a step's: docs/running.md)
            fan.pending.appendleft(unit)
        else:
            self._push(fan.ended(unit, ItemStatus.DEAD, now, **common))  # type: ignore[arg-type]
            if fan.stopped:
                self._fan_dropped(st, fan, fan.stop(fan.stopped))
                if fan.foreach.fail_fast:
                    for seq in list(fan.running):
                        self._executor.cancel(AttemptKey(fan.run_id, st.id, seq))
        self._fan_check(st, fan)

    def _fan_retry_due(self, st: _State) -> None:
        fan = st.fan
        if fan is None:
            return
        now = time.monotonic()
        due = [u for u in fan.retrying if u.due <= now]
        fan.retrying = [u for u in fan.retrying if u.due > now]
        if fan.stopped or self._stopping:
            self._fan_dropped(st, fan, due)
        else:
            fan.pending.extendleft(reversed(due))
            self._fan_requeue(st)
        self._fan_check(st, fan)

    def _fan_dropped(self, st: _State, fan: FanOut, units: list[Unit]) -> None:
        now = time.time()
        for unit in units:
            self._push(fan.ended(unit, ItemStatus.CANCELLED, now, logged=False))

    def _fan_check(self, st: _State, fan: FanOut) -> None:
        if fan.done and not fan.retrying and st.status is StepStatus.RUNNING:
            self._fan_finish(st, fan)
        else:
            self._fan_requeue(st)

    def _fan_finish(self, st: _State, fan: FanOut) -> None:
        st.last_end = time.monotonic()  # it ends now: with no item run (an empty stream) it had no end yet
        fan.export()
        reason = fan.summary()
        if fan.fault:  # its producer failed, or an item mid-stream could not run
            self._finish(st, StepStatus.FAILED_ALLOWED if st.step.continue_on_error else StepStatus.FAILED,
                         reason=mask_text(f"{fan.fault}: {reason}", tuple(fan.inv.secrets)))
        elif fan.exceeded:
            self._finish(st, StepStatus.FAILED_ALLOWED if st.step.continue_on_error else StepStatus.FAILED,
                         reason=f"{EXCEEDED}: {reason}")
        elif fan.cut or any(u.status is ItemStatus.CANCELLED for u in fan.units):
            # it had begun (its items were read, some may have run): never "before it started"
            self._finish(st, StepStatus.CANCELLED, reason=f"{self._cancelled_running() if self._stopping else 'cancelled'}: {reason}")
        else:
            self._finish(st, StepStatus.SUCCEEDED, reason=reason)

    def _stop_fans(self, states: list[_State]) -> None:
        """The run stops: no unit starts any more; a fan with nothing running ends now."""
        for st in states:
            fan = st.fan
            if fan is None or st.status is not StepStatus.RUNNING:
                continue
            fan.queued = False
            self._fan_dropped(st, fan, fan.stop(self._stopping))
            self._fan_check(st, fan)


def unit_key(unit: Unit) -> str:
    """The key chaos decides a unit's faults by: its item's key, or a batch's keys sorted and
    joined (as ``state.items.item_faults`` reads them back)."""
    return ",".join(sorted(unit.keys))


def backoff(step: Step, failures: int, rng: random.Random) -> float:
    """Exponential from ``retry_delay``, capped, with equal jitter (half fixed, half random)."""
    cap = max(0.0, step.retry_max_delay)
    delay = min(cap, step.retry_delay * (2 ** (failures - 1)))
    return float(delay / 2 + rng.uniform(0, delay / 2))


def retryable(step: Step, r: AttemptResult) -> bool:
    """Whether a failed attempt of ``step`` (or of one of its items) may be retried."""
    if r.outcome is AttemptOutcome.LOST:  # not the step's doing: its exit code says nothing
        return True
    if step.retry_on_exit_codes:
        return r.outcome is AttemptOutcome.FAILED and r.exit_code in step.retry_on_exit_codes
    return True


__all__ = ["EXCEEDED", "FanOutSteps", "backoff", "retryable", "unit_key"]
