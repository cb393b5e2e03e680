"""``flowctl plan PIPELINE --explain [--check]``: for each step, would it run, be reused or be up
to date, and why (which fingerprint part changed, which output is missing, which upstream runs).
Called by ``cli/plan.py``; the deciding lives in ``state/assess.py`` and ``state/decide.py``."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any


def explain(
    pipeline_arg: str,
    *,
    overrides: Mapping[str, str],
    only: Sequence[str],
    from_: Sequence[str],
    state_dir: str | None,
    resume: bool,
    run_id: str | None,
    force: bool,
    force_steps: Sequence[str],
    fmt: str,
    check: bool,
    strict: bool = False,
) -> int:
    """Print the decision for every selected step; with ``check``, 1 when anything would run."""
    import os

    from flowctl.cli._boundary import report_warnings
    from flowctl.cli._history import emit_json
    from flowctl.graph import compile_plan
    from flowctl.spec import load_source
    from flowctl.spec.resolve import Resolver, resolve_params
    from flowctl.spec.rules import Stage
    from flowctl.spec.validation import gate
    from flowctl.state.assess import assess, check_resume_params, resume_target
    from flowctl.state.decide import Verdict
    from flowctl.state.keys import load_key
    from flowctl.state.views import state_dir_for

    folder = state_dir_for(state_dir, pipeline_arg)
    target = resume_target(folder, pipeline_arg, run_id, overrides, only, from_) if resume or run_id else None
    record = target.record if target is not None else None
    if target is not None:
        overrides, only, from_ = target.params, target.only, target.from_
    source = load_source(pipeline_arg)
    pipeline = source.pipeline
    params = resolve_params(pipeline, overrides)
    if target is not None:
        check_resume_params(target, pipeline, params)
    plan = compile_plan(pipeline, only=only, from_=from_)
    environ = dict(os.environ)
    report_warnings(gate(source, stage=Stage.CHECK, params=params, environ=environ, selected=plan.selected,
                         strict=strict))
    del source  # the document's node tree: not needed any more (peak memory on large files)
    resolver = Resolver(pipeline, params, environ)
    invocations = {sid: resolver.step(pipeline.steps[sid]) for sid in plan.selected}
    # Read-only: without a key yet, a throwaway one (nothing keyed is recorded to compare with).
    key = load_key(folder, create=False)
    found = assess(folder, plan, params, invocations, environ, key=key, resume=record, force=force,
                   force_steps=force_steps)
    decisions = [found.decisions[sid] for sid in plan.selected]
    would_run = [d.step for d in decisions if d.verdict is Verdict.RUN]
    if fmt == "json":
        emit_json({
            "pipeline": pipeline.name,
            "resumes": record.run_id if record else None,
            "would_run": would_run,
            "steps": [_decision_json(d, found.fingerprints[d.step].digest) for d in decisions],
        })
    else:
        out = sys.stdout
        head = f"Pipeline {pipeline.name}: {len(would_run)} of {len(decisions)} steps would run"
        if record is not None:
            head += f" (resuming run {record.run_id})"
        elif resume or run_id:
            head += " (no recorded run to resume: as a new run)"
        if not found.history_found:
            head += f"; no history in {folder} yet"
        out.write(head + "\n")
        width = max((len(d.step) for d in decisions), default=0)
        for d in decisions:
            out.write(f"  {d.step:<{width}}  {d.verdict.value:<10}  {d.reason}\n")
    if check and would_run:
        return 1
    return 0


def _decision_json(decision: Any, digest: str) -> dict[str, Any]:
    return {
        "step": decision.step,
        "verdict": decision.verdict.value,
        "reason": decision.reason,
        "changes": [{"part": c.part, "change": c.change, "text": c.describe()} for c in decision.changes],
        "compared_with_run": decision.since_run,
        "fingerprint": digest,
    }
