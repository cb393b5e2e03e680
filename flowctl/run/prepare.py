"""Everything a run needs before anything starts: the pipeline, parameter values, the plan and
each selected step's resolved invocation (and remediation).

Checks what must fail before the first process starts: unknown or mistyped parameters and step
ids (``--only``, ``--from``, ``--force-step``: UsageError from ``spec.resolve``/``graph``), an
invalid pipeline (PipelineError), and what this machine lacks for the selected steps
(``spec/preflight.py`` with the run's severities: an unset secret, a missing ``cwd`` that no step
makes, an input that exists nowhere and no step makes; PipelineError naming their lines). What
is only worth a warning (an unset ``${{ env.X }}``) is returned in ``PreparedRun.warnings``.
Shared by ``run`` and ``run --dry-run``, so a dry run refuses what a run would refuse.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flowctl.errors import Findings
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
    warnings: Findings = field(default_factory=lambda: Findings("", ()))

    @property
    def short_secrets(self) -> tuple[str, ...]:
        """Names of the secrets too short to mask inside running text (masked only as whole
        words; ``flowctl run`` warns once), over every selected step and remediation."""
        invocations = [*self.invocations.values(), *(r for r in self.remediations.values() if r is not None)]
        return tuple(sorted({name for inv in invocations for name in inv.short_secrets}))


def prepare_run(
    path: str | os.PathLike[str],
    *,
    overrides: Mapping[str, str] = {},
    only: Sequence[str] = (),
    from_: Sequence[str] = (),
    force_steps: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> PreparedRun:
    """Load ``path`` and resolve what would run. Raises PipelineError or UsageError."""
    from flowctl.graph import check_step_ids, compile_plan
    from flowctl.spec import load_source
    from flowctl.spec.resolve import Resolver, resolve_params
    from flowctl.spec.rules import Stage
    from flowctl.spec.validation import gate

    env = os.environ if environ is None else environ
    source = load_source(path)
    pipeline = source.pipeline
    params = resolve_params(pipeline, overrides)
    plan = compile_plan(pipeline, only=only, from_=from_)
    check_step_ids(pipeline, force_steps, "--force-step")
    warnings = gate(source, stage=Stage.RUN, params=params, environ=env, selected=plan.selected)
    del source  # the node tree is not needed any more: keep peak memory down on large files
    invocations: dict[str, Invocation] = {}
    remediations: dict[str, Invocation | None] = {}
    resolver = Resolver(pipeline, params, env)
    for sid in plan.selected:
        step = pipeline.steps[sid]
        invocations[sid] = resolver.step(step)
        remediations[sid] = resolver.remediation(step)
    return PreparedRun(pipeline, plan, params, invocations, remediations, warnings)


__all__ = ["PreparedRun", "prepare_run"]
