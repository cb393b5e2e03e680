"""Build Pipeline/Step models directly, for unit tests of the diff core."""

from __future__ import annotations

from typing import Any

from flowctl.diff.changes import Side
from flowctl.spec.model import DEFAULTABLE, Defaults, Pipeline, Step

OLD = Side("v1.0.0", "pipelines/etl.yaml", "a" * 40)
NEW = Side("work tree", "pipelines/etl.yaml")


def step(sid: str, run: str = "echo hi", defaults: Defaults | None = None, **fields: Any) -> Step:
    """A step with ``defaults`` applied where ``fields`` do not say otherwise."""
    d = defaults or Defaults()
    explicit = frozenset(f for f in DEFAULTABLE if f in fields)
    for name in DEFAULTABLE:
        fields.setdefault(name, getattr(d, name))
    for name in ("needs", "tags", "inputs", "outputs"):
        if name in fields:
            fields[name] = tuple(fields[name])
    return Step(id=sid, run=run, explicit=explicit, **fields)


def pipeline(*steps: Step, name: str = "etl", **fields: Any) -> Pipeline:
    return Pipeline(path="pipelines/etl.yaml", name=name, steps={s.id: s for s in steps}, **fields)
