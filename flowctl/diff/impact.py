"""Impact of a change: which steps run differently, which recorded results stop counting.

A step runs differently when its behaviour changed (any field but description/tags, a default
or pipeline env entry it inherits, a parameter default it uses) or it is new, and so does
everything downstream of it. A recorded result is invalidated when a field that decides it
(``RESULT_FIELDS``: command, declared env, cwd, inputs, or a parameter default the step uses)
changed, together with everything downstream: resume runs those steps again. Steps new in this
version have no recorded result, so they are never "invalidated".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from flowctl.diff.changes import (
    RESULT_FIELDS,
    ChangeKind,
    Impact,
    SettingChange,
    StepChange,
)
from flowctl.spec.model import Pipeline


def downstream(pipeline: Pipeline, roots: Iterable[str]) -> set[str]:
    """``roots`` and every step that (transitively) needs one of them."""
    dependents: dict[str, list[str]] = {sid: [] for sid in pipeline.steps}
    for sid, step in pipeline.steps.items():
        for need in step.needs:
            dependents.setdefault(need, []).append(sid)
    seen = {r for r in roots if r in pipeline.steps}
    queue = deque(seen)
    while queue:
        for child in dependents.get(queue.popleft(), ()):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return seen


def _is_param_value_change(setting: SettingChange) -> bool:
    # A changed default (or a param added/removed) changes what the steps using it run.
    parts = setting.field.split(".")
    return parts[0] == "params" and (len(parts) == 2 or parts[2] in ("default", "type"))


def compute_impact(
    new: Pipeline | None,
    steps: Iterable[StepChange],
    settings: Iterable[SettingChange],
    *,
    renames: Mapping[str, str],
) -> Impact:
    """The ``Impact`` of ``steps``/``settings`` changes on the ``new`` pipeline."""
    if new is None:
        return Impact()
    behaves: set[str] = set()
    results: set[str] = set()
    added: set[str] = set()
    for change in steps:
        if change.kind is ChangeKind.ADDED:
            behaves.add(change.step)
            added.add(change.step)
        elif change.kind in (ChangeKind.CHANGED, ChangeKind.RENAMED):
            if change.behaviour_fields:
                behaves.add(change.step)
            if any(f.field.split(".")[0] in RESULT_FIELDS for f in change.fields):
                results.add(change.step)
    for setting in settings:
        if _is_param_value_change(setting):
            behaves.update(setting.affects)
            results.update(setting.affects)
    order = tuple(new.steps)
    runs = downstream(new, behaves)
    invalid = downstream(new, results) - added
    return Impact(
        runs_differently=tuple(s for s in order if s in runs),
        invalidated=tuple(s for s in order if s in invalid),
    )


__all__ = ["compute_impact", "downstream"]
