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
        kind = type(event)
        if kind is RunStarted:
            self.started = event  # type: ignore[assignment]
        elif kind is RunFinished:
            self.finished = event  # type: ignore[assignment]
        elif kind is StepReady:
            self._step(event.step).ready_at = event.at  # type: ignore[union-attr]
        elif kind is AttemptStarted:
            self._step(event.step).attempts.append(event)  # type: ignore[union-attr,arg-type]
        elif kind is AttemptFinished:
            self._step(event.step).results.append(event)  # type: ignore[union-attr,arg-type]
        elif kind is StepFinished:
            self._step(event.step).finished = event  # type: ignore[union-attr,assignment]

    def flush(self) -> None:
        self.flushes += 1

    def _step(self, step: str) -> StepRecord:
        record = self.steps.get(step)
        if record is None:
            record = self.steps[step] = StepRecord()
        return record


class NullRunStore:
    """A ``RunStore`` that keeps nothing (the benchmark's "recording off" baseline)."""

    def record(self, event: Event) -> None:
        pass

    def flush(self) -> None:
        pass


__all__ = ["MemoryRunStore", "NullRunStore", "StepRecord"]
