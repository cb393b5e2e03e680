"""``flowctl chaos check``'s invariants over the items of foreach steps (issue 17: items are
attempts too).

``state/invariants.py`` checks steps and their attempts; a foreach step has no attempts of its
own, its items do. Over the items recorded in a resume chain (``state/items.py``):

* ``converged``: a foreach step that failed had every dead-lettered item fail only through
  injected faults (each of its attempts in that run injected with a failing fault);
* ``no-rerun``: no item that had succeeded ran again in a later run of the chain;
* ``duplicates``: the items in flight when a runner died (one per running item or batch);
* ``retries``: no item made more attempts in one run than its step allows.

Pure functions over ``ItemRecord``s; they return violations and never print. ``Violation`` lives
here so both modules share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flowctl.run.chaos import FAILING, injected_only
from flowctl.run.events import ItemStatus
from flowctl.state.items import ItemRecord

_DEAD = (ItemStatus.DEAD.value, ItemStatus.POISONED.value)


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant (of a step, an item or a run): which check, where, what happened."""

    check: str
    message: str
    run_id: str = ""
    step: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "message": self.message, "run_id": self.run_id, "step": self.step}


def converged_items(run_id: str, failed_steps: Mapping[str, str], items: Sequence[ItemRecord],
                    behind: frozenset[str] = frozenset()) -> list[Violation]:
    """Every dead-lettered item of the foreach steps ``failed_steps`` (step → its reason, in run
    ``run_id``, the chain's last) failed only through injected faults; a failed foreach step
    with no dead item failed for a reason of its own (its items could not be read), unless it
    is ``behind`` a failed step (streaming that step's output: judged there, as a skip is)."""
    out: list[Violation] = []
    for step, reason in failed_steps.items():
        dead = [r for r in items if r.step == step and r.status in _DEAD]
        if not dead and step not in behind:
            out.append(Violation("converged", f"step {step} failed for real: {reason or 'no item was dead-lettered'}",
                                 run_id, step))
        for r in dead:
            if injected_only(r.attempts, r.injected):
                continue
            injected = {attempt for attempt, fault in r.injected if fault in FAILING}
            last = max((n for n in range(1, r.attempts + 1) if n not in injected), default=r.attempts)
            why = f"exit {r.exit_code}" if r.exit_code is not None and last == r.attempts else "a failure"
            out.append(Violation("converged", f"item {r.key!r} of step {step} was dead-lettered for real: "
                                 f"attempt {last} ({why}) was not injected", run_id, step))
    return out


def rerun_items(chain: Sequence[tuple[str, Sequence[ItemRecord]]]) -> list[Violation]:
    """No item that succeeded in a run of ``chain`` (oldest first) ran again in a later one."""
    out: list[Violation] = []
    succeeded: dict[tuple[str, str], str] = {}
    for run_id, items in chain:
        for r in items:
            where = succeeded.get((r.step, r.key))
            if where is not None and r.status != ItemStatus.REUSED.value and r.attempts > 0:
                out.append(Violation("no-rerun", f"item {r.key!r} of step {r.step} ran again in {run_id} "
                                         f"although it had succeeded in {where}", run_id, r.step))
        for r in items:
            if r.status == ItemStatus.SUCCEEDED.value:
                succeeded.setdefault((r.step, r.key), run_id)
    return out


def in_flight_items(items: Sequence[ItemRecord]) -> list[str]:
    """The items (a batch once) a dead runner left running: ``step[key]`` each."""
    units: dict[tuple[str, str], str] = {}
    for r in items:
        if r.status in (ItemStatus.INTERRUPTED.value, ItemStatus.RUNNING.value):
            unit = f"batch {r.batch}" if r.batch else r.key
            units.setdefault((r.step, unit), f"{r.step}[{unit}]")
    return list(units.values())


def retried_items(run_id: str, items: Sequence[ItemRecord], allowed: Mapping[str, int]) -> list[Violation]:
    """No item made more attempts in run ``run_id`` than its step allows (``allowed``: step →
    attempts, from the pipeline file; a step not in it is not checked)."""
    return [Violation("retries", f"item {r.key!r} of step {r.step} made {r.attempts} attempts; "
                          f"it allows {allowed[r.step]}", run_id, r.step)
            for r in items if r.step in allowed and r.attempts > allowed[r.step]]


def item_fault_counts(items: Sequence[ItemRecord]) -> dict[str, int]:
    """How often each fault was injected into these items (a batch's attempt once)."""
    seen: set[tuple[str, str, int, str]] = set()
    counts: dict[str, int] = {}
    for r in items:
        unit = f"batch {r.batch}" if r.batch else r.key
        for attempt, fault in r.injected:
            if (r.step, unit, attempt, fault) not in seen:
                seen.add((r.step, unit, attempt, fault))
                counts[fault] = counts.get(fault, 0) + 1
    return counts


__all__ = ["Violation", "converged_items", "in_flight_items", "item_fault_counts", "rerun_items", "retried_items"]
