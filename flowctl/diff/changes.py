"""The ``Change`` records a semantic diff produces: plain frozen values, no rendering.

``compare.py`` fills these from two ``Pipeline`` models; ``render.py`` (and ``cli``) turn them
into text, markdown, JSON or a changelog. Values in ``FieldChange`` are JSON-ready (str, int,
float, bool, list, dict or ``None`` for "not set"); durations stay in seconds and commands stay
as given (a string for the shell form, a list for argv). Secret values never get here: a
``FieldChange`` with ``secret=True`` carries ``None`` on both sides.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from flowctl.diff.classes import ChangeClass, class_of, setting_key, step_key

#: A JSON-ready value of a field (``None``: the field is not set on that side).
Value: TypeAlias = str | int | float | bool | list[Any] | dict[str, Any] | None


class ChangeKind(enum.Enum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    RENAMED = "renamed"  # same definition under a new id (maybe with other fields changed)
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of a step that differs, e.g. ``timeout`` 300 → 600 or ``env.TOKEN`` (secret)."""

    field: str  # dotted: "run", "needs", "env.TARGET", "remediate.timeout"
    old: Value
    new: Value
    secret: bool = False  # an entry named in secret_env: values withheld
    inherited: bool = False  # the step took the value from ``defaults`` on both sides
    change_class: ChangeClass = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "change_class", class_of(step_key(self.field)))


@dataclass(frozen=True, slots=True)
class StepChange:
    """A step that was added, removed, renamed or changed."""

    kind: ChangeKind
    step: str  # the id in the new pipeline (the old id for a removed step)
    old_id: str | None = None  # set for renamed steps
    fields: tuple[FieldChange, ...] = ()

    def of_class(self, cls: ChangeClass) -> tuple[FieldChange, ...]:
        return tuple(f for f in self.fields if f.change_class is cls)


@dataclass(frozen=True, slots=True)
class EdgeChange:
    """A dependency ``need → step`` that appeared or disappeared (renames are followed)."""

    kind: ChangeKind  # ADDED or REMOVED
    need: str
    step: str


@dataclass(frozen=True, slots=True)
class SettingChange:
    """A pipeline-level change (schedule, params, concurrency, defaults, env, ...)."""

    field: str  # dotted: "schedule", "params.date.default", "env.LEVEL", "defaults.retries"
    old: Value
    new: Value
    secret: bool = False
    affects: tuple[str, ...] = ()  # steps that see the change (e.g. a default they inherit)
    change_class: ChangeClass = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "change_class", class_of(setting_key(self.field)))


@dataclass(frozen=True, slots=True)
class Impact:
    """What a change does when the pipeline runs next (steps in the new pipeline's order).

    ``rerun``: steps that existed before whose recorded results no longer count (an
    invalidating or identity change to them or to a step they need, transitively): resume and
    up-to-date checks run them again. ``policy_only``: steps whose execution policy changed and
    nothing else that counts: their results stay valid. ``new``: steps with no release before.
    """

    rerun: tuple[str, ...] = ()
    policy_only: tuple[str, ...] = ()
    new: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Side:
    """Where one side of a comparison came from."""

    label: str  # "v1.2.0", "main", "work tree"
    path: str | None  # the pipeline file, relative to the repository root (None: absent)
    commit: str | None = None  # hex sha (None: the work tree)


@dataclass(frozen=True, slots=True)
class PipelineDiff:
    """Everything that differs between two versions of one pipeline."""

    name: str
    kind: ChangeKind  # ADDED / REMOVED (whole file), CHANGED or UNCHANGED
    old: Side
    new: Side
    settings: tuple[SettingChange, ...] = ()
    steps: tuple[StepChange, ...] = ()
    edges: tuple[EdgeChange, ...] = ()
    impact: Impact = field(default_factory=Impact)
    # The step ids and needs of each side, for graphs (old side first).
    old_graph: tuple[tuple[str, tuple[str, ...]], ...] = ()
    new_graph: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def changed(self) -> bool:
        return self.kind is not ChangeKind.UNCHANGED

    def steps_of(self, kind: ChangeKind) -> tuple[StepChange, ...]:
        return tuple(s for s in self.steps if s.kind is kind)


@dataclass(frozen=True, slots=True)
class DiffReport:
    """The result of ``flowctl diff``: one entry per pipeline compared."""

    pipelines: tuple[PipelineDiff, ...]

    @property
    def changed(self) -> bool:
        return any(p.changed for p in self.pipelines)


__all__ = [
    "ChangeClass",
    "ChangeKind",
    "DiffReport",
    "EdgeChange",
    "FieldChange",
    "Impact",
    "PipelineDiff",
    "SettingChange",
    "Side",
    "StepChange",
    "Value",
]
