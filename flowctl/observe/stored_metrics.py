"""Metrics of recorded runs: read the state store (read-only) and compute ``RunMetrics``.

The state store returns its own row values (``state.run_records``); ``from_detail`` turns one run's
detail into the ``observe.metric_records`` values the metrics are computed from. The dependency edges
for the critical path come from the pipeline as it is now (the store does not keep the graph).
Statuses the store knows but this module does not (a newer flowctl) are kept out of the figures
rather than guessed. Raises ``StateError`` for a bad database, ``UsageError`` for an unknown run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flowctl.observe.metric_records import AttemptRecord, RunRecord, StepRecord
from flowctl.observe.metrics import RunMetrics, compute_run_metrics
from flowctl.run.chaos import injected_only
from flowctl.run.events import AttemptKind, AttemptOutcome, ItemStatus, RunStatus, StepStatus

if TYPE_CHECKING:
    from flowctl.spec.model import Pipeline
    from flowctl.state.items import ItemRecord
    from flowctl.state.run_records import RunDetail

Needs = Mapping[str, tuple[str, ...]]


def _enum(kind: type, value: str | None, default: object) -> object:
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        return default


def from_detail(detail: RunDetail, needs: Needs | None = None) -> RunRecord:
    """The metrics records of one stored run, its foreach items too (``detail.items``), so a
    foreach step counts as executed, with a duration, as when the run was live."""
    # The stored strings to the enums by a dict lookup (calling an Enum per row was a third of
    # this for 100,000 steps; issue 12).
    statuses = {s.value: s for s in StepStatus}
    # "interrupted" (the runner died during it) is no failure of the command: like a cancelled
    # attempt it is left out of the error rate.
    outcomes: dict[str | None, AttemptOutcome] = {o.value: o for o in AttemptOutcome}
    outcomes["interrupted"] = AttemptOutcome.CANCELLED
    kinds = {k.value: k for k in AttemptKind}
    steps = []
    for row in detail.steps:
        status = statuses.get(row.status)
        if status is None:
            continue
        attempts = []
        for a in row.attempt_records:
            if a.started_at is None:
                continue
            attempts.append(
                AttemptRecord(
                    attempt=a.attempt,
                    started_at=a.started_at,
                    finished_at=a.finished_at,
                    outcome=outcomes.get(a.outcome),
                    exit_code=a.exit_code,
                    kind=kinds.get(a.kind, AttemptKind.ATTEMPT),
                    host=a.host,
                    injected=a.injected,
                )
            )
        steps.append(
            StepRecord(
                step=row.step,
                status=status,
                ready_at=row.ready_at,
                finished_at=row.finished_at,
                attempts=tuple(attempts),
            )
        )
    run = detail.run
    return RunRecord(
        run_id=run.run_id,
        pipeline=run.pipeline,
        status=_enum(RunStatus, run.status, RunStatus.RUNNING),  # type: ignore[arg-type]
        started_at=run.started_at,
        finished_at=run.finished_at,
        steps=tuple(steps),
        needs=dict(needs or {}),
        scheduled_for=run.fire_time,
        chaos=run.chaos,
        **_item_rows(detail.items),
    )


_DEAD = (ItemStatus.DEAD.value, ItemStatus.POISONED.value)


def _item_rows(items: Sequence[ItemRecord]) -> dict[str, Any]:
    if not items:
        return {}
    statuses = {s.value: s for s in ItemStatus}
    rows: dict[str, list[tuple[ItemStatus, float, float]]] = {}
    started: dict[str, float] = {}
    for r in items:
        status = statuses.get(r.status)
        if status is None:
            continue
        rows.setdefault(r.step, []).append((status, r.duration or 0.0, r.finished_at or 0.0))
        if r.started_at is not None:
            started[r.step] = min(started.get(r.step, r.started_at), r.started_at)
    from flowctl.state.item_checks import item_fault_counts

    chaos_dead: dict[str, int] = {}
    for r in items:
        if r.status in _DEAD and r.injected and injected_only(r.attempts, r.injected):
            chaos_dead[r.step] = chaos_dead.get(r.step, 0) + 1
    return {"items": {s: tuple(v) for s, v in rows.items()}, "items_started": started,
            "item_faults": sum(item_fault_counts(items).values()), "items_chaos_dead": chaos_dead}


def recorded_pipeline(pipeline_path: str) -> Pipeline | None:
    """The pipeline file a run recorded, as it is now; None when it is gone or invalid."""
    from flowctl.errors import FlowctlError

    if not pipeline_path or not os.path.isfile(pipeline_path):
        return None
    try:
        from flowctl.spec import load_pipeline

        return load_pipeline(pipeline_path)
    except (FlowctlError, OSError):
        return None


def needs_of(pipeline_path: str) -> Needs:
    """The ``needs`` edges of the pipeline file as it is now; empty when it is gone or cannot be
    parsed (the figures then leave the critical path out rather than fail).

    Parsed, not built: checking and building a 100,000-step pipeline cost twice the parse, and
    the critical path only needs the edges (issue 12); an edge to a step the run does not have
    is ignored by ``critical_path``.
    """
    from flowctl.errors import FlowctlError
    from flowctl.spec import read_document
    from flowctl.spec.places import needs_of as step_needs

    if not pipeline_path or not os.path.isfile(pipeline_path):
        return {}
    try:
        doc, _ = read_document(pipeline_path)
    except (FlowctlError, OSError):
        return {}
    steps = doc.data.get("steps") if isinstance(doc.data, dict) and not doc.diagnostics else None
    if not isinstance(steps, dict):
        return {}
    return {str(sid): tuple(n for n in step_needs(step) if isinstance(n, str)) for sid, step in steps.items()}


def detail_metrics(detail: RunDetail, needs: Needs | None = None) -> RunMetrics:
    """The metrics of a run read with ``state.views.run_details``; ``needs`` defaults to the
    recorded pipeline file's; ``items``: its foreach items."""
    if needs is None:
        needs = needs_of(detail.run.pipeline_path)
    return compute_run_metrics(from_detail(detail, needs), now=time.time())


def run_record(
    state_dir: str | os.PathLike[str], run_id: str, needs: Needs | None = None, pipeline: str | None = None
) -> RunRecord:
    """The metrics records of one recorded run (``run_id`` as ``state.queries.find_run`` takes
    it; ``pipeline`` narrows ``latest``), for figures beyond ``RunMetrics`` (``run_samples``)."""
    from flowctl.state.views import run_details

    return from_detail(run_details(state_dir, run_id, pipeline), needs)


def run_metrics(
    state_dir: str | os.PathLike[str], run_id: str, needs: Needs | None = None, pipeline: str | None = None
) -> RunMetrics:
    """The metrics of one recorded run (``run_id`` as ``state.queries.find_run`` takes it;
    ``pipeline`` narrows ``latest``)."""
    return compute_run_metrics(run_record(state_dir, run_id, needs, pipeline), now=time.time())


def history_metrics(
    state_dir: str | os.PathLike[str],
    pipeline: str,
    *,
    last: int | None = None,
    since: float | None = None,
    needs: Needs | None = None,
) -> tuple[RunMetrics, ...]:
    """Metrics of the recorded runs of ``pipeline`` (name or file), newest first.

    ``last`` keeps the N most recent; ``since`` (epoch seconds) those started at or after it.
    """
    from flowctl.state.views import recent_runs, run_details

    now = time.time()
    runs = recent_runs(state_dir, pipeline, limit=None if since is not None else last)
    if since is not None:
        runs = tuple(r for r in runs if r.started_at >= since)[: last if last is not None else None]
    return tuple(
        compute_run_metrics(from_detail(run_details(state_dir, r.run_id), needs), now=now) for r in runs
    )


__all__ = ["detail_metrics", "from_detail", "history_metrics", "needs_of", "recorded_pipeline", "run_metrics", "run_record"]
