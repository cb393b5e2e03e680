"""The one topological walk of flowctl's run path: steps in generations.

``generations`` is Kahn's algorithm over a set of steps and the needs among them, linear in steps
+ needs and without importing anything (networkx costs more to import than a small pipeline
takes to run). ``graph.plan.compile_plan`` takes its levels from it and ``observe.metrics`` its
critical path. The analyses users see beyond the run path (graph export, cycle paths, diff
impact) use networkx, imported when they run (``Plan.to_networkx``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


class CycleLeft(ValueError):
    """The steps could not all be ordered: ``left`` are those on or after a cycle."""

    def __init__(self, left: Sequence[str]) -> None:
        super().__init__(f"{len(left)} step(s) on or after a cycle")
        self.left = tuple(left)


def generations(
    steps: Iterable[str], needs: Mapping[str, Sequence[str]], users: Mapping[str, Sequence[str]] | None = None
) -> list[list[str]]:
    """``steps`` in generations: the first needs nothing, each later one only steps of earlier
    ones (needs outside ``steps`` are ignored). Within a generation, ``steps``' order.

    ``users`` (each step's dependents among ``steps``) may be passed when the caller has it.
    Raises ``CycleLeft`` when the needs form a cycle."""
    ids = list(steps)
    inside = set(ids) if users is None else None
    waiting: dict[str, int] = {}
    if users is None:
        found: dict[str, list[str]] = {sid: [] for sid in ids}
        for sid in ids:
            ups = [n for n in needs.get(sid, ()) if inside is not None and n in inside]
            waiting[sid] = len(ups)
            for up in ups:
                found[up].append(sid)
        users = found
    else:
        for sid in ids:
            waiting[sid] = 0
        for sid in ids:
            for user in users[sid]:
                waiting[user] += 1
    out: list[list[str]] = []
    level = [sid for sid in ids if not waiting[sid]]
    placed = 0
    while level:
        out.append(level)
        placed += len(level)
        following: list[str] = []
        for sid in level:
            for user in users[sid]:
                waiting[user] -= 1
                if not waiting[user]:
                    following.append(user)
        level = following
    if placed != len(ids):
        raise CycleLeft([sid for sid in ids if waiting[sid]])
    return out


__all__ = ["CycleLeft", "generations"]
