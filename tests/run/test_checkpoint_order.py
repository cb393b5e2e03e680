"""The scheduler saves before it starts (issue 12): over generated DAGs, concurrency limits and
completion orders, an attempt is submitted only after the flush that holds its AttemptStarted,
and after the flush that holds the StepFinished of every step it needs; events reach the sinks
only after their flush. Pure and in-process: a recording store and a scripted executor."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from flowctl.run.events import AttemptOutcome, AttemptStarted, Event, StepFinished
from flowctl.run.options import RunOptions
from flowctl.run.ports import AttemptSpec
from flowctl.run.prepare import prepare_run
from flowctl.run.scheduler import Scheduler
from tests.run.fakes import InlineExecutor


class Trace:
    """One ordered log of what the store, the executor and the sinks saw."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, object]] = []
        self.pending: list[Event] = []

    # the RunStore port
    def record(self, event: Event) -> None:
        self.pending.append(event)

    def flush(self) -> None:
        self.entries.append(("flush", tuple(self.pending)))
        self.pending = []


class ScriptedExecutor(InlineExecutor):
    """Ends running attempts in an order drawn by the test (some fail), a few at a time."""

    def __init__(self, trace: Trace, rng: random.Random) -> None:
        super().__init__()
        self.trace, self.rng = trace, rng

    def started(self, spec: AttemptSpec) -> None:
        self.trace.entries.append(("submit", spec.key.step))

    def ending(self, running: list[AttemptSpec]) -> list[AttemptSpec]:
        self.rng.shuffle(running)
        return running[: self.rng.randint(1, max(1, len(running)))]

    def outcome(self, spec: AttemptSpec) -> AttemptOutcome:
        return AttemptOutcome.OK if self.rng.random() < 0.9 else AttemptOutcome.FAILED


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 14), st.integers(1, 4), st.randoms(use_true_random=False), st.data())
def test_nothing_starts_before_it_and_what_it_needs_are_saved(tmp_path_factory, size, concurrency, rng, data):
    needs = {i: sorted(set(data.draw(st.lists(st.integers(0, i - 1), max_size=3)))) if i else [] for i in range(size)}
    lines = ["version: 1", "name: order", "steps:"]
    for i, ns in needs.items():
        lines.append(f"  s{i}: {{run: 'true'" + (f", needs: [{', '.join(f's{n}' for n in ns)}]" if ns else "") + "}")
    folder = tmp_path_factory.mktemp("order")
    (folder / "p.yaml").write_text("\n".join(lines) + "\n")
    prepared = prepare_run(folder / "p.yaml", environ={})
    trace = Trace()
    shown: list[Event] = []

    def sink(event: Event) -> None:
        trace.entries.append(("emit", event))
        shown.append(event)

    Scheduler(prepared.plan, prepared.invocations, ScriptedExecutor(trace, rng), trace, sink,
              RunOptions(logs_dir=str(folder), concurrency=concurrency, handle_signals=False)).run()
    saved: set[tuple[str, str]] = set()  # ("start", step) / ("ok", step) once flushed
    flushed: set[int] = set()
    for kind, what in trace.entries:
        if kind == "flush":
            for event in what:  # type: ignore[attr-defined]
                flushed.add(id(event))
                if isinstance(event, AttemptStarted):
                    saved.add(("start", event.step))
                elif isinstance(event, StepFinished) and event.status.done_ok:
                    saved.add(("ok", event.step))
        elif kind == "submit":
            step = str(what)
            assert ("start", step) in saved, f"{step} was submitted before its start was saved"
            for need in needs[int(step[1:])]:
                assert ("ok", f"s{need}") in saved, f"{step} started before {need}'s success was saved"
        else:
            assert id(what) in flushed, f"{what} was shown before it was saved"
    submitted = {what for kind, what in trace.entries if kind == "submit"}
    assert submitted >= {f"s{i}" for i, ns in needs.items() if not ns}  # every root step started
    assert len([e for e in shown if isinstance(e, StepFinished)]) == size
