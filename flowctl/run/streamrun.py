"""The scheduler's side of steps whose stdout gives a ``foreach`` step its items (issue 15).

A mixin of ``Scheduler`` (through ``FanOutSteps``). Every step some foreach step reads with
``items_from: {step: S}`` gets its stdout apart from its log, in ``<run folder>/<S>/stdout.jsonl``
(``AttemptSpec.stdout_path``; its stderr stays in its log). The ordinary rule holds for every
edge (a step starts once what it needs ended well) except a streaming one (``stream: true``):
there the consumer stops waiting for its producer when the producer's first attempt starts.
Once the consumer began, after each wait of the loop it reads the lines the producer printed
since (``FanOut.feed``) and starts their items. A line that is not JSON cancels the producer,
which fails naming the line; a failed attempt of the producer stops new items in its consumers,
which fail once their running items ended. When the producer succeeds its last lines are read
and the stream ends; the percentage of tolerated failures is judged then. A consumer that
begins after its producer ended reads the output whole: this run's, or the one recorded by the
run the producer is reused from (``RunOptions.stdout_paths``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from flowctl.run.events import AttemptKind, AttemptOutcome, Event, RunId, StepStatus
from flowctl.run.itemstream import STDOUT, OutputFault
from flowctl.run.ports import AttemptKey, AttemptResult, Executor
from flowctl.spec.foreach import ItemFault
from flowctl.spec.model import ItemsKind, Step

if TYPE_CHECKING:
    from flowctl.run.foreach import FanOut, Unit
    from flowctl.run.options import RunOptions
    from flowctl.run.stepstate import StepState as _State


class StreamSteps:
    """Mixin: see the module docstring. The attributes above ``_producers`` are the ``Scheduler``'s."""

    run_id: RunId
    _opt: RunOptions
    _executor: Executor
    _states: dict[str, _State]
    _steps: Mapping[str, Step]
    _producers: frozenset[str]  # steps whose stdout a foreach step reads
    _streams: dict[str, list[_State]]  # producer -> the steps that stream its output (in the run)
    _released: set[str]  # producers whose streaming consumers stopped waiting for them
    _broken: dict[str, str]  # producer -> how an attempt of it failed while it streamed
    _bad_output: dict[str, str]  # producer -> the line of its output that is not JSON
    _root_failure: str | None

    if TYPE_CHECKING:
        def _push(self, event: Event) -> None: ...
        def _make_ready(self, st: _State) -> None: ...
        def _finish(self, st: _State, status: StepStatus, *, exit_code: int | None = None, reason: str = "",
                    fingerprint: str = "") -> None: ...
        def _fan_check(self, st: _State, fan: FanOut) -> None: ...
        def _fan_dropped(self, st: _State, fan: FanOut, units: list[Unit]) -> None: ...

    def _stream_setup(self) -> None:
        sources = [s.foreach.source for s in self._steps.values() if s.foreach is not None]
        self._producers = frozenset(src.path for src in sources if src.kind is ItemsKind.STEP)
        self._streams, self._released, self._broken, self._bad_output = {}, set(), {}, {}
        for st in self._states.values():
            src = st.step.foreach.source if st.step.foreach is not None else None
            if src is not None and src.kind is ItemsKind.STEP and src.stream and src.path in self._states:
                self._streams.setdefault(src.path, []).append(st)

    def _stdout_path(self, st: _State, kind: AttemptKind) -> str:
        """Where an attempt of ``st`` writes its stdout ("": into its log, with its stderr)."""
        if st.id not in self._producers or kind is AttemptKind.REMEDIATE:
            return ""
        return f"{self._opt.logs_dir}/{st.id}/{STDOUT}"

    def _stream_start(self, st: _State) -> None:
        """``st`` starts: the steps streaming its output stop waiting for it (the first time)."""
        consumers = self._streams.get(st.id)
        if not consumers or st.id in self._released:
            return
        self._released.add(st.id)
        for dep in consumers:
            dep.waiting -= 1
            if dep.waiting == 0 and dep.status is StepStatus.PENDING:
                self._make_ready(dep)

    def _stream_released(self, st: _State, dep: _State) -> bool:
        """Whether ``dep`` stopped waiting for ``st`` when ``st`` started (a streaming edge)."""
        return st.id in self._released and dep in self._streams.get(st.id, ())

    def _stream_source(self, st: _State) -> tuple[str | None, bool]:
        """Where ``st`` reads its items from a step's output (None: not recorded), and whether
        as a stream; (None, False) for other sources. Raises ItemFault when the producer failed."""
        foreach = st.step.foreach
        if foreach is None or foreach.source.kind is not ItemsKind.STEP:
            return None, False
        name = foreach.source.path
        producer = self._states.get(name)
        if producer is None:  # outside the run's selection: it counts as done
            return self._opt.stdout_paths.get(name), False
        if name in self._broken:
            raise ItemFault(f"step {name}, whose output gives the items, failed: {self._broken[name]}", 0)
        status = producer.status
        if status is StepStatus.SUCCEEDED:
            return f"{self._opt.logs_dir}/{name}/{STDOUT}", False
        if status in (StepStatus.REUSED, StepStatus.UP_TO_DATE):
            return self._opt.stdout_paths.get(name), False
        if foreach.source.stream and status is StepStatus.RUNNING:
            return f"{self._opt.logs_dir}/{name}/{STDOUT}", True
        raise ItemFault(f"step {name}, whose output gives the items, ended {status.value}", 0)

    def _feed_streams(self) -> None:
        """After each wait: the lines streaming producers printed since, as items."""
        for consumers in self._streams.values():
            for st in consumers:
                fan = st.fan
                if fan is not None and fan.tail is not None and not fan.closed and st.status is StepStatus.RUNNING:
                    self._stream_feed(st, fan)

    def _stream_feed(self, st: _State, fan: FanOut, *, check: bool = True) -> None:
        try:
            for event in fan.feed(time.time()):
                self._push(event)
        except OutputFault as exc:  # the producer's fault: it fails, and with it this step
            self._output_fault(fan.foreach.source.path, str(exc))
            return
        except ItemFault as exc:  # this step's: a duplicate key, more than max_items, ...
            self._fan_fail(st, fan, str(exc))
            return
        if fan.stopped:  # the percentage of tolerated failures, judged at the end of the stream
            self._fan_dropped(st, fan, fan.stop(fan.stopped))
        if check:
            self._fan_check(st, fan)

    def _output_fault(self, producer: str, why: str) -> None:
        """A line of ``producer``'s output is not JSON: stop it (it fails naming the line)."""
        if producer not in self._bad_output:
            self._bad_output[producer] = why
            self._executor.cancel(AttemptKey(self.run_id, producer, self._states[producer].attempts))

    def _fan_fail(self, st: _State, fan: FanOut, why: str) -> None:
        """``st`` fails whatever its items do: no new item starts; it ends when its running ones did."""
        fan.fault = fan.fault or why
        self._fan_dropped(st, fan, fan.stop(why))
        self._fan_check(st, fan)

    def _stream_ended(self, st: _State, r: AttemptResult) -> bool:
        """An attempt of ``st`` ended (recorded). For a producer: end its streams, or break them.
        True when this decided how ``st`` ends (a line of its output that is not JSON)."""
        if st.id not in self._producers or st.kind is AttemptKind.REMEDIATE:
            return False
        streaming = [c for c in self._streams.get(st.id, ()) if c.fan is not None and c.fan.tail is not None
                     and not c.fan.closed and c.status is StepStatus.RUNNING]
        if r.outcome is AttemptOutcome.OK and st.id not in self._bad_output:
            for c in streaming:
                assert c.fan is not None
                c.fan.closed = True  # read the rest, its unfinished last line too
                self._stream_feed(c, c.fan)
        bad = self._bad_output.pop(st.id, "")
        if r.outcome is AttemptOutcome.OK and not bad:
            return False
        if r.outcome is AttemptOutcome.CANCELLED and not bad:  # the run stops: so do its streams
            for c in streaming:
                assert c.fan is not None
                self._fan_dropped(c, c.fan, c.fan.stop("cancelled"))
                self._fan_check(c, c.fan)
            return False
        why = bad or r.error or (f"exit {r.exit_code}" if r.outcome is AttemptOutcome.FAILED else r.outcome.value)
        if st.id in self._streams:
            self._broken[st.id] = why
            self._root_failure = self._root_failure or st.id  # not the steps that stream it
            for c in self._streams[st.id]:
                if c.fan is not None and c.status is StepStatus.RUNNING:
                    self._fan_fail(c, c.fan, f"step {st.id}, whose output gives the items, failed: {why}")
        if not bad:
            return False
        self._finish(st, StepStatus.FAILED_ALLOWED if st.step.continue_on_error else StepStatus.FAILED,
                     exit_code=r.exit_code, reason=bad)
        return True


__all__ = ["StreamSteps"]
