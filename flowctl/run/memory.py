"""The in-memory ``RunStore``: keeps a run's events and the latest state of each step.

Serves until the SQLite store (``state/``) plugs in behind the same protocol, and in tests. It
answers the questions the summary and tests ask (each step's status, its attempts) without
replaying events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flowctl.run.events import (
    AttemptFinished,
    AttemptStarted,
    Event,
    RunFinished,
    RunStarted,
    StepFinished,
    StepReady,
)


@dataclass(slots=True)
class StepRecord:
    """What is known about one step of the run so far."""

    ready_at: float | None = None
    attempts: list[AttemptStarted] = field(default_factory=list)
    results: list[AttemptFinished] = field(default_factory=list)
    finished: StepFinished | None = None


class MemoryRunStore:
    """A ``RunStore`` that keeps everything in memory (nothing survives the process)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.steps: dict[str, StepRecord] = {}
        self.started: RunStarted | None = None
        self.finished: RunFinished | None = None
        self.flushes = 0

    def record(self, event: Event) -> None:
        self.events.append(event)
        match event:
            case RunStarted():
                self.started = event
            case RunFinished():
                self.finished = event
            case StepReady():
                self._step(event.step).ready_at = event.at
            case AttemptStarted():
                self._step(event.step).attempts.append(event)
            case AttemptFinished():
                self._step(event.step).results.append(event)
            case StepFinished():
                self._step(event.step).finished = event

    def flush(self) -> None:
        self.flushes += 1

    def _step(self, step: str) -> StepRecord:
        record = self.steps.get(step)
        if record is None:
            record = self.steps[step] = StepRecord()
        return record


class NullRunStore:
    """A ``RunStore`` that keeps nothing: the benchmarks' "recording off" baseline
    (``bench/state_bench.py``). Every ``flowctl run`` records its state; there is no option
    to turn that off."""

    def record(self, event: Event) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


__all__ = ["MemoryRunStore", "NullRunStore", "StepRecord"]
