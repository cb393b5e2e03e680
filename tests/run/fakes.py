"""An executor that runs nothing: for scheduler and state tests that need no processes."""

from __future__ import annotations

import time
from collections.abc import Sequence

from flowctl.run.events import AttemptOutcome
from flowctl.run.ports import AttemptKey, AttemptResult, AttemptSpec


class InlineExecutor:
    """Every submitted attempt ends at the next ``wait`` with the outcome ``outcome`` gives;
    subclasses choose which attempts end (``ending``) and what submitting does (``started``)."""

    def __init__(self) -> None:
        self.attempts: list[AttemptSpec] = []

    def started(self, spec: AttemptSpec) -> None:
        """What submitting ``spec`` does besides queueing it."""

    def ending(self, running: list[AttemptSpec]) -> list[AttemptSpec]:
        """Which of the running attempts end at this ``wait``."""
        return running

    def outcome(self, spec: AttemptSpec) -> AttemptOutcome:
        return AttemptOutcome.OK

    def submit(self, spec: AttemptSpec) -> None:
        self.started(spec)
        self.attempts.append(spec)

    def wait(self, timeout: float | None) -> Sequence[AttemptResult]:
        done = self.ending(list(self.attempts))
        self.attempts = [s for s in self.attempts if s not in done]
        return [AttemptResult(s.key, self.outcome(s), 0, time.time(), 0.0, logged=False) for s in done]

    def wakeup(self) -> None: ...
    def cancel(self, key: AttemptKey, *, force: bool = False) -> None: ...
    def cancel_all(self, *, force: bool = False) -> None: ...

    def running(self) -> int:
        return len(self.attempts)

    def close(self) -> None: ...
