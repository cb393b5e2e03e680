"""Before a run: fingerprint the plan, read what history says, decide each step.

Owns the glue between ``fingerprint.py`` (what decides a step's result), the recorded history
(``history.py``) and the pure decision (``decide.py``), for ``flowctl run`` (``--resume``,
``--run-id``, up-to-date skipping, ``--force``, ``--force-step``) and ``flowctl plan --explain``.
Also checks the arguments of a resume against the run it continues. Reads the database only;
recording is the store's job. Raises ``StateError`` for a bad database, ``UsageError`` for a
resume that cannot be (no run to resume, different params or selection, unknown step).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flowctl.errors import UsageError
from flowctl.fingerprint import Fingerprint, fingerprint_steps, hash_paths
from flowctl.state import db, history
from flowctl.state.decide import Decision, decide
from flowctl.state.records import LastSuccess, RunDetail, RunRecord
from flowctl.state.views import pipeline_key

if TYPE_CHECKING:
    from flowctl.graph import Plan
    from flowctl.spec.model import ParamValue
    from flowctl.spec.resolve import Invocation


@dataclass(frozen=True, slots=True)
class Assessment:
    """The fingerprints of a plan and, for each selected step, what to do with it."""

    fingerprints: Mapping[str, Fingerprint]  # the selected steps and everything they need
    decisions: Mapping[str, Decision]  # the selected steps, in plan order
    resumed: RunDetail | None = None
    history_found: bool = True  # False when the state folder has no database yet
    parts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # digest -> parts, to save


def find_resumable(state_dir: str | os.PathLike[str], pipeline_path: str, run_id: str | None) -> RunRecord:
    """The run ``--resume`` continues: ``run_id`` when given, else the latest of the pipeline."""
    if not db.db_path(state_dir).exists():
        raise UsageError(
            f"nothing to resume: no runs recorded in {state_dir}",
            hint="run the pipeline without --resume first (or point --state-dir at its state folder)",
        )
    conn = db.connect(state_dir, create=False)
    try:
        with db.translated(db.db_path(state_dir)):
            if run_id:
                chosen = history.find_run(conn, run_id)
                if chosen.pipeline_path and chosen.pipeline_path != pipeline_key(pipeline_path):
                    raise UsageError(
                        f"run {chosen.run_id} is a run of {chosen.pipeline_path}, not of {pipeline_path}",
                        hint=f"resume it with `flowctl run {chosen.pipeline_path} --run-id {chosen.run_id}`",
                    )
                return chosen
            found = history.latest_run(conn, pipeline_key(pipeline_path))
    finally:
        conn.close()
    if found is None:
        raise UsageError(
            f"nothing to resume: no recorded run of {pipeline_path} in {state_dir}",
            hint="run it without --resume first",
        )
    return found


def resume_arguments(
    record: RunRecord, overrides: Mapping[str, str], only: Sequence[str], from_: Sequence[str]
) -> tuple[dict[str, str], tuple[str, ...], tuple[str, ...]]:
    """The params and selection to resume ``record`` with: the recorded ones. Giving different
    ones is a ``UsageError`` (a resume continues that run; start a new run instead)."""
    from flowctl.spec.expr import value_text

    recorded = {k: value_text(v) for k, v in record.params.items()}
    for name, value in overrides.items():
        if recorded.get(name) != value:
            was = recorded.get(name)
            raise UsageError(
                f"--resume continues run {record.run_id}, which ran with "
                + (f"{name}={was!r}" if was is not None else f"no parameter {name!r}")
                + f", not {name}={value!r}",
                hint="drop the -p options to resume it, or start a new run without --resume",
            )
    rec_only = tuple(record.selection.get("only") or ())
    rec_from = tuple(record.selection.get("from") or ())
    for option, given, before in (("--only", tuple(only), rec_only), ("--from", tuple(from_), rec_from)):
        if given and set(given) != set(before):
            shown = " ".join(str(b) for b in before) if before else "(none)"
            raise UsageError(
                f"--resume continues run {record.run_id}, which ran with {option} {shown}, not {' '.join(given)}",
                hint="drop the selection options to resume it, or start a new run without --resume",
            )
    return recorded, rec_only, rec_from


def fingerprint_plan(
    plan: Plan,
    params: Mapping[str, ParamValue],
    invocations: Mapping[str, Invocation],
    environ: Mapping[str, str],
) -> dict[str, Fingerprint]:
    """Fingerprints of the selected steps and of every step they need (resolved here when the
    plan left them out, so a changed upstream outside ``--only`` still counts)."""
    from flowctl.spec.resolve import resolve_step

    pipeline = plan.pipeline
    needs = {sid: step.needs for sid, step in pipeline.steps.items()}
    if len(plan.selected) == len(pipeline.steps):  # everything: the plan's levels are an order
        order = [sid for level in plan.levels for sid in level]
    else:
        order = _closure_order(plan.selected, needs)
    resolved = dict(invocations)
    for sid in order:
        if sid not in resolved:
            resolved[sid] = resolve_step(pipeline, pipeline.steps[sid], params, environ)
    return fingerprint_steps(order, needs, resolved, params)


def _closure_order(selected: Sequence[str], needs: Mapping[str, Sequence[str]]) -> list[str]:
    """``selected`` and everything they need, needs first (iterative depth-first)."""
    order: list[str] = []
    done: set[str] = set()
    for root in selected:
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            sid, i = stack.pop()
            if sid in done:
                continue
            deps = needs.get(sid, ())
            if i < len(deps):
                stack.append((sid, i + 1))
                if deps[i] not in done:
                    stack.append((deps[i], 0))
                continue
            done.add(sid)
            order.append(sid)
    return order


def assess(
    state_dir: str | os.PathLike[str],
    plan: Plan,
    params: Mapping[str, ParamValue],
    invocations: Mapping[str, Invocation],
    environ: Mapping[str, str],
    *,
    resume: RunRecord | None = None,
    force: bool = False,
    force_steps: Sequence[str] = (),
) -> Assessment:
    """Fingerprint the plan and decide, for each selected step, run / reused / up to date."""
    pipeline = plan.pipeline
    for sid in force_steps:
        if sid not in pipeline.steps:
            from flowctl.spec.schema import suggest

            close = suggest(sid, pipeline.steps)
            raise UsageError(f"--force-step {sid!r}: no such step in {pipeline.name}",
                             hint=f"did you mean {close!r}?" if close else None)
    fingerprints = fingerprint_plan(plan, params, invocations, environ)
    resumed: RunDetail | None = None
    successes: dict[str, LastSuccess] = {}
    parts: dict[str, dict[str, str]] = {}
    found = db.db_path(state_dir).exists()
    if found:
        conn = db.connect(state_dir, create=False)
        try:
            with db.translated(db.db_path(state_dir)):
                if resume is not None:
                    resumed = history.run_detail(conn, resume.run_id, attempts_too=False)
                successes = history.last_successes(conn, pipeline.name)
                # The parts only say what changed: read them for the recorded fingerprints that
                # differ from the current ones (none, when nothing changed; issue 12).
                recorded = [(s.step, s.fingerprint) for s in successes.values()]
                if resumed is not None:
                    recorded += [(s.step, s.fingerprint) for s in resumed.steps]
                parts = history.fingerprint_parts(conn, {
                    digest for sid, digest in recorded if sid in fingerprints and fingerprints[sid].digest != digest
                })
        finally:
            conn.close()
    needs = {sid: pipeline.steps[sid].needs for sid in plan.selected}
    outputs = {sid: tuple(getattr(invocations[sid], "outputs", ())) for sid in plan.selected}

    def output_hashes(sid: str) -> Mapping[str, str]:
        return hash_paths(outputs[sid], invocations[sid].cwd)

    decisions = decide(
        plan.selected, needs, fingerprints, outputs=outputs, output_hashes=output_hashes,
        resume=resumed, successes=successes, recorded_parts=parts,
        force=force, force_steps=frozenset(force_steps),
    )
    new_parts = {fp.digest: dict(fp.parts) for fp in fingerprints.values()}
    return Assessment(fingerprints, decisions, resumed, found, new_parts)


def outputs_of(invocation: Invocation) -> dict[str, str]:
    """Content hashes of an invocation's declared outputs now (after a step succeeded)."""
    return hash_paths(getattr(invocation, "outputs", ()), invocation.cwd)


__all__ = [
    "Assessment",
    "assess",
    "find_resumable",
    "fingerprint_plan",
    "outputs_of",
    "resume_arguments",
]
