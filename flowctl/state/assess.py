"""Before a run: fingerprint the plan, read what history says, decide each step.

Owns the glue between ``fingerprint.py`` (what decides a step's result), the recorded history
(``queries.py``) and the pure decision (``decide.py``), for ``flowctl run`` (``--resume``,
``--run-id``, up-to-date skipping, ``--force``, ``--force-step``) and ``flowctl plan --explain``.
Also checks the arguments of a resume against the run it continues. Reads the database only;
recording is the store's job. Raises ``StateError`` for a bad database, ``UsageError`` for a
resume that cannot be (an unknown ``--run-id``, different params or selection, unknown step).
``--resume`` with no recorded run is not an error: it starts a new run (issue 12).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flowctl.errors import UsageError
from flowctl.fingerprint import Fingerprint, FingerprintKey, fingerprint_steps, hash_paths
from flowctl.state import db, queries
from flowctl.state.decide import Decision, decide
from flowctl.state.run_records import LastSuccess, ResumedRun, RunRecord, StoredFingerprint
from flowctl.state.views import pipeline_key

if TYPE_CHECKING:
    from flowctl.graph import Plan
    from flowctl.spec.model import ParamValue, Pipeline
    from flowctl.spec.resolve import Invocation


@dataclass(frozen=True, slots=True)
class Assessment:
    """The fingerprints of a plan and, for each selected step, what to do with it."""

    fingerprints: Mapping[str, Fingerprint]  # the selected steps and everything they need
    decisions: Mapping[str, Decision]  # the selected steps, in plan order
    resumed: ResumedRun | None = None
    history_found: bool = True  # False when the state folder has no database yet


@dataclass(frozen=True, slots=True)
class ResumeTarget:
    """What ``--resume`` continues and with what: the recorded run (None: there is none, so a
    new run starts), the params to resolve, the selection, and the selection to record."""

    record: RunRecord | None
    params: Mapping[str, str]  # -p overrides: the recorded values, then those given
    only: tuple[str, ...]
    from_: tuple[str, ...]
    force: bool  # --force of the run continued, or given now
    force_steps: tuple[str, ...]  # its --force-step and those given now
    given: Mapping[str, str] = field(default_factory=dict)  # the -p options given now
    requested: bool = True  # --resume / --run-id was given (False: a plain run)


def find_resumable(state_dir: str | os.PathLike[str], pipeline_path: str, run_id: str | None) -> RunRecord | None:
    """The run ``--resume`` continues: ``run_id`` when given (a ``UsageError`` when unknown),
    else the latest run of the pipeline, or None when none is recorded."""
    if not db.db_path(state_dir).exists():
        if run_id:
            from flowctl.state.elsewhere import where_hint

            raise UsageError(
                f"no run with id {run_id!r}: no runs recorded in {state_dir}",
                hint=where_hint(state_dir, pipeline_path, ("run", pipeline_path, "--run-id", run_id))
                or "`flowctl runs` lists recorded runs; point --state-dir at their state folder",
            )
        return None
    conn = db.connect(state_dir, create=False)
    try:
        with db.translated(db.db_path(state_dir)):
            if run_id:
                chosen = queries.find_run(conn, run_id, pipeline_key(pipeline_path))  # latest: of this pipeline
                if chosen.pipeline_path and chosen.pipeline_path != pipeline_key(pipeline_path):
                    raise UsageError(
                        f"run {chosen.run_id} is a run of {chosen.pipeline_path}, not of {pipeline_path}",
                        hint=f"resume it with `flowctl run {chosen.pipeline_path} --run-id {chosen.run_id}`",
                    )
                return chosen
            return queries.latest_run(conn, pipeline_key(pipeline_path))
    finally:
        conn.close()


def resume_target(
    state_dir: str | os.PathLike[str], pipeline_path: str, run_id: str | None, overrides: Mapping[str, str],
    only: Sequence[str], from_: Sequence[str], *, force: bool = False, force_steps: Sequence[str] = (),
) -> ResumeTarget:
    """The run ``--resume`` continues and the arguments to continue it with. Without a recorded
    run, the arguments as given (a new run). Giving another ``--only``/``--from`` than the run
    had is a ``UsageError``; other params are checked once resolved (``check_resume_params``)."""
    record = find_resumable(state_dir, pipeline_path, run_id)
    if record is None:
        # Nothing recorded here. If runs of the pipeline are recorded elsewhere under the
        # project, the user most likely means those: say where (issue 13) rather than start
        # afresh. Otherwise a run killed before it recorded anything resumes as a new run (12).
        from flowctl.state.elsewhere import where_hint

        hint = where_hint(state_dir, pipeline_path, ("run", pipeline_path, "--resume"))
        if hint:
            raise UsageError(f"nothing to resume: no recorded run of {pipeline_path} in {state_dir}", hint=hint)
        return ResumeTarget(None, dict(overrides), tuple(only), tuple(from_), force, tuple(force_steps))
    from flowctl.spec.expr import value_text

    params = {k: value_text(v) for k, v in record.params.items()}
    params.update(overrides)
    rec_only = tuple(str(s) for s in record.selection.get("only") or ())
    rec_from = tuple(str(s) for s in record.selection.get("from") or ())
    for option, given, before in (("--only", tuple(only), rec_only), ("--from", tuple(from_), rec_from)):
        if given and set(given) != set(before):
            shown = " ".join(str(b) for b in before) if before else "(none)"
            raise UsageError(
                f"--resume continues run {record.run_id}, which ran with {option} {shown}, not {' '.join(given)}",
                hint="drop the selection options to resume it, or start a new run without --resume",
            )
    # The forcing of the run continued is kept (recorded again), so a resume of this resume
    # does not skip as up to date what that run was asked to run afresh (issue 12).
    rec_force = bool(record.selection.get("force"))
    rec_steps = tuple(str(s) for s in record.selection.get("force_steps") or ())
    steps = rec_steps + tuple(s for s in force_steps if s not in rec_steps)
    return ResumeTarget(record, params, rec_only, rec_from, rec_force or force, steps, dict(overrides))


def check_resume_params(target: ResumeTarget, pipeline: Pipeline, params: Mapping[str, ParamValue]) -> None:
    """A resume runs with the params of the run it continues: a ``UsageError`` when a value
    given with ``-p`` differs, compared as canonical values of today's types (so ``-p n=10.0``
    continues a run recorded with ``n=10``)."""
    record = target.record
    if record is None:
        return
    from flowctl.spec.expr import value_text
    from flowctl.spec.paramvalues import coerce_param

    for name in target.given:
        value = params.get(name)
        param = pipeline.params.get(name)
        was = record.params.get(name)
        if was is not None and param is not None:
            ok, canonical = coerce_param(param.type.value, was)
            was = canonical if ok else was
        if was is None or value is None or value_text(was) != value_text(value):
            raise UsageError(
                f"--resume continues run {record.run_id}, which ran with "
                + (f"{name}={value_text(was)!r}" if was is not None else f"no parameter {name!r}")
                + f", not {name}={target.given[name]!r}",
                hint="drop the -p options to resume it, or start a new run without --resume",
            )


def fingerprint_plan(
    plan: Plan,
    params: Mapping[str, ParamValue],
    invocations: Mapping[str, Invocation],
    environ: Mapping[str, str],
    key: FingerprintKey,
) -> dict[str, Fingerprint]:
    """Fingerprints of the selected steps and of every step they need (resolved here when the
    plan left them out, so a changed upstream outside ``--only`` still counts)."""
    from flowctl.spec.resolve import Resolver

    pipeline = plan.pipeline
    needs = {sid: step.needs for sid, step in pipeline.steps.items()}
    if len(plan.selected) == len(pipeline.steps):  # everything: the plan's levels are an order
        order = [sid for level in plan.levels for sid in level]
    else:
        order = _closure_order(plan.selected, needs)
    resolved = dict(invocations)
    missing = [sid for sid in order if sid not in resolved]
    if missing:
        resolver = Resolver(pipeline, params, environ)
        resolved.update((sid, resolver.step(pipeline.steps[sid])) for sid in missing)
    return fingerprint_steps(order, needs, resolved, params, key=key)


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
    key: FingerprintKey,
    resume: RunRecord | None = None,
    force: bool = False,
    force_steps: Sequence[str] = (),
) -> Assessment:
    """Fingerprint the plan (with the state folder's ``key``) and decide, for each selected
    step, run / reused / up to date."""
    from flowctl.graph.plan import check_step_ids

    pipeline = plan.pipeline
    check_step_ids(pipeline, force_steps, "--force-step")
    fingerprints = fingerprint_plan(plan, params, invocations, environ, key)
    resumed: ResumedRun | None = None
    successes: dict[str, LastSuccess] = {}
    elsewhere: dict[str, LastSuccess] = {}
    recorded: dict[str, StoredFingerprint] = {}
    found = db.db_path(state_dir).exists()
    if found:
        conn = db.connect(state_dir, create=False)
        try:
            with db.translated(db.db_path(state_dir)):
                if resume is not None:
                    resumed = queries.resumed_run(conn, resume.run_id)
                # Only successes of runs in this pipeline file's folder decide what is up to
                # date here: a `run --ref` ran in a worktree of its own (trial of main). Not read
                # when the resumed run gives every step back unchanged: only a step it does not
                # reuse is compared with its last success (issue 12: a no-op resume of 100k steps).
                if not _all_reused(resumed, plan.selected, fingerprints):
                    successes = queries.last_successes(conn, pipeline.name, folder=_folder(pipeline.path))
                    if len(successes) < len(plan.selected):
                        elsewhere = {k: v for k, v in queries.last_successes(conn, pipeline.name).items()
                                     if k not in successes}
                # The records only explain what changed: read them for the recorded fingerprints
                # that differ from the current ones (none, when nothing changed; issue 12). An
                # equal digest needs none: it was made with the same scheme and key.
                pairs = [(s.step, s.fingerprint) for s in successes.values()]
                if resumed is not None:
                    pairs += [(s.step, s.fingerprint) for s in resumed.outcomes.values()]
                recorded = queries.stored_fingerprints(conn, {
                    digest for sid, digest in pairs if sid in fingerprints and fingerprints[sid].digest != digest
                })
        finally:
            conn.close()
    needs = {sid: pipeline.steps[sid].needs for sid in plan.selected}
    outputs = {sid: tuple(getattr(invocations[sid], "outputs", ())) for sid in plan.selected}

    def output_hashes(sid: str) -> Mapping[str, str]:
        return hash_paths(outputs[sid], invocations[sid].cwd)

    decisions = decide(
        plan.selected, needs, fingerprints, outputs=outputs, output_hashes=output_hashes,
        resume=resumed, successes=successes, recorded=recorded, elsewhere=elsewhere,
        force=force, force_steps=frozenset(force_steps),
    )
    return Assessment(fingerprints, decisions, resumed, found)


def _all_reused(resumed: ResumedRun | None, selected: Sequence[str], fingerprints: Mapping[str, Fingerprint]) -> bool:
    """Whether the resumed run succeeded in every selected step with today's digest: then
    ``decide`` reuses each (or runs it for --force), and never looks at a last success."""
    if resumed is None:
        return False
    step = resumed.step
    for sid in selected:
        record = step(sid)
        if record is None or not record.succeeded or record.fingerprint != fingerprints[sid].digest:
            return False
    return True


def _folder(path: str) -> str:
    """The folder of a pipeline file as runs record it (``runs.pipeline_path``)."""
    return os.path.dirname(pipeline_key(path))


def outputs_of(invocation: Invocation) -> dict[str, str]:
    """Content hashes of an invocation's declared outputs now (after a step succeeded)."""
    return hash_paths(getattr(invocation, "outputs", ()), invocation.cwd)


__all__ = [
    "Assessment",
    "ResumeTarget",
    "assess",
    "check_resume_params",
    "find_resumable",
    "fingerprint_plan",
    "outputs_of",
    "resume_target",
]
