"""The figures of a run's foreach items (issue 15): per step, counts by status, items per
second, the item error rate and item duration percentiles; the Prometheus textfile and the
summary read them from ``RunMetrics.items``. Computed from ``ItemFinished`` events, which the
``RunRecorder`` keeps as (status, duration, end time) per step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from flowctl.observe.metrics import Distribution
from flowctl.run.events import ItemStatus

#: (status, duration, finished at) of one item's last attempt.
ItemSample = tuple[ItemStatus, float, float]
_FAILED = (ItemStatus.DEAD, ItemStatus.POISONED)


@dataclass(frozen=True, slots=True)
class ItemFigures:
    """One foreach step's items in one run."""

    counts: Mapping[str, int]  # ItemStatus value -> items
    dead_letter: int
    per_second: float | None  # items ended over the span from the first to the last end
    error_rate: float | None  # dead-lettered / items that ran
    duration: Distribution
    queue_depth_max: int | None = None  # the most units ready and waiting for a slot at once (live runs)

    def to_dict(self) -> dict[str, object]:
        return {"counts": dict(self.counts), "dead_letter": self.dead_letter, "per_second": self.per_second,
                "error_rate": self.error_rate, "duration": self.duration.to_dict(),
                "queue_depth_max": self.queue_depth_max}


def item_figures(samples: Mapping[str, Sequence[ItemSample]], started: Mapping[str, float],
                 waiting: Mapping[str, int] | None = None, *,
                 chaos_dead: Mapping[str, int] | None = None) -> Mapping[str, ItemFigures]:
    """Per foreach step: its figures, from its samples, when its first item started and (a live
    run's) the most units that waited for a slot at once. ``chaos_dead``: per step, its items
    dead-lettered only through injected faults (issue 17): in the dead-letter count, never in
    the error rate."""
    out: dict[str, ItemFigures] = {}
    for step, items in samples.items():
        counts: dict[str, int] = {}
        for status, _, _ in items:
            counts[status.value] = counts.get(status.value, 0) + 1
        ran = [s for s in items if s[0] is not ItemStatus.REUSED and s[0] is not ItemStatus.CANCELLED]
        dead = sum(1 for s in items if s[0] in _FAILED)
        span = max((s[2] for s in ran), default=0.0) - started.get(step, 0.0) if ran else 0.0
        out[step] = ItemFigures(
            MappingProxyType(counts), dead, len(ran) / span if span > 0 else None,
            (dead - (chaos_dead or {}).get(step, 0)) / len(ran) if ran else None, Distribution.of([s[1] for s in ran]),
            (waiting or {}).get(step),
        )
    return MappingProxyType(out)


__all__ = ["ItemFigures", "ItemSample", "item_figures"]
