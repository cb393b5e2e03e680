"""Everything a run needs before anything starts: the pipeline, parameter values, the plan and
each selected step's resolved invocation (and remediation).

Checks what must fail before the first process starts: unknown or mistyped parameters and step
ids (UsageError from ``spec.resolve``/``graph``), an invalid pipeline (PipelineError), and a
step ``cwd`` that does not exist (UsageError naming the step's line). Shared by ``run`` and
``run --dry-run``; the state store reuses it for ``plan --explain``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowctl.errors import UsageError
from flowctl.spec.model import ParamValue, Pipeline

if TYPE_CHECKING:
    from flowctl.graph import Plan
    from flowctl.spec.resolve import Invocation


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """A pipeline checked and compiled for a run: plan, invocations and parameters."""

    pipeline: Pipeline
    plan: Plan
    params: Mapping[str, ParamValue]
    invocations: Mapping[str, Invocation]  # every selected step
    remediations: Mapping[str, Invocation | None]


def prepare_run(
    path: str | os.PathLike[str],
    *,
    overrides: Mapping[str, str] = {},
    only: Sequence[str] = (),
    from_: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> PreparedRun:
    """Load ``path`` and resolve what would run. Raises PipelineError or UsageError."""
    from flowctl.graph import compile_plan
    from flowctl.spec import load_pipeline
    from flowctl.spec.resolve import resolve_params, resolve_remediation, resolve_step

    env = os.environ if environ is None else environ
    pipeline = load_pipeline(path)
    params = resolve_params(pipeline, overrides)
    plan = compile_plan(pipeline, only=only, from_=from_)
    invocations: dict[str, Invocation] = {}
    remediations: dict[str, Invocation | None] = {}
    for sid in plan.selected:
        step = pipeline.steps[sid]
        inv = resolve_step(pipeline, step, params, env)
        if not os.path.isdir(inv.cwd):
            where = f"{step.span}: " if step.span else ""
            raise UsageError(
                f"{where}step {sid!r}: working folder {inv.cwd} does not exist",
                hint="create it, or fix the step's `cwd:` (relative to the pipeline file's folder)",
            )
        invocations[sid] = inv
        remediations[sid] = resolve_remediation(pipeline, step, params, env)
    return PreparedRun(pipeline, plan, params, invocations, remediations)


__all__ = ["PreparedRun", "prepare_run"]
