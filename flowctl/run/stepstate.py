"""``StepState``: the scheduler's mutable bookkeeping of one step during a run.

Shared by ``scheduler.py`` and its ``foreach`` side (``fanrun.py``); nothing else reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowctl.run.events import AttemptKind, StepStatus
from flowctl.spec.model import Step

if TYPE_CHECKING:
    from flowctl.run.foreach import FanOut


class StepState:
    """The mutable bookkeeping of one step during a run."""

    __slots__ = (
        "attempts",
        "dependents",
        "exit_code",
        "fan",
        "first_start",
        "id",
        "index",
        "kind",
        "last_end",
        "priority",
        "reason",
        "regular",
        "status",
        "step",
        "waiting",
    )

    def __init__(self, step: Step, index: int, priority: int) -> None:
        self.id = step.id
        self.step = step
        self.index = index
        self.priority = priority
        self.waiting = 0  # needs (within the run) not yet ended well
        self.dependents: list[StepState] = []
        self.status = StepStatus.PENDING
        self.attempts = 0  # every attempt so far, remediation included
        self.regular = 0  # regular attempts so far
        self.kind = AttemptKind.ATTEMPT  # what the next/current attempt is
        self.first_start: float | None = None
        self.last_end = 0.0
        self.exit_code: int | None = None
        self.reason = ""
        self.fan: FanOut | None = None  # a foreach step's items, once it started (run/fanrun.py)

    def __lt__(self, other: StepState) -> bool:  # heap ties (same time, same step) keep any order
        return False


__all__ = ["StepState"]
