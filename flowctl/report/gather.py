"""Read a run (or a pipeline's recent runs) from the state folder and build the report model.

Read-only: opens the state database through ``state.views``, reads the last lines of failed
steps' logs, and loads the pipeline file the run recorded (for descriptions and ``needs``; a
file that is gone or invalid leaves them out, with a note on the page). Figures come from
``observe.metrics`` and ``observe.trends``, the DAG's columns from the plan's levels
(``graph.plan``). Never steers a run. Output and commands in the state are already masked (the
executor masks output before it reaches the log file; commands are masked when recorded).
Raises ``StateError`` for a bad database, ``UsageError`` for an unknown run or baseline.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from flowctl.errors import UsageError
from flowctl.observe.metrics import compute_run_metrics, percentile
from flowctl.observe.stored_metrics import from_detail, history_metrics, recorded_pipeline
from flowctl.observe.trends import BASELINE_RUNS, is_slower, pipeline_stats
from flowctl.report.baseline import BaselineSpec, step_baselines
from flowctl.report.model import (
    AttemptRow,
    Header,
    HistoryReport,
    HistoryRun,
    ItemGroup,
    RunReport,
    StepTrend,
    StepView,
)
from flowctl.run.events import StepStatus

if TYPE_CHECKING:
    from flowctl.spec.model import Pipeline
    from flowctl.state.items import ItemRecord
    from flowctl.state.run_records import RunDetail, RunRecord, StepRecord

#: Longest log line kept in a report; a failure's tail is at most ``TAIL_LINES`` of these.
LINE_CHARS = 400
#: Dead-lettered items listed on the page; past these it says how many more and where to see them.
DEAD_SHOWN = 100
_FAILED = (StepStatus.FAILED.value, StepStatus.FAILED_ALLOWED.value, StepStatus.INTERRUPTED.value)


def build_run_report(
    state_dir: str | os.PathLike[str],
    run_id: str,
    *,
    baseline: BaselineSpec,
    pipeline: Pipeline | None = None,
    generated_at: float | None = None,
    of_pipeline: str | None = None,
) -> RunReport:
    """The report of one recorded run. ``pipeline`` (the run's own, after ``run --report``)
    defaults to the recorded pipeline file as it is now; ``of_pipeline`` (a file or a name)
    narrows ``latest`` / ``latest~N`` to that pipeline's runs."""
    from flowctl.state.views import run_details

    detail = run_details(state_dir, run_id, of_pipeline, command=("report", run_id))
    run = detail.run
    notes: list[str] = []
    pipe = pipeline if pipeline is not None else recorded_pipeline(run.pipeline_path)
    ids = [s.step for s in detail.steps]
    if pipe is None:
        notes.append(
            f"The pipeline file {run.pipeline_path or '(none recorded)'} is gone or invalid: the page "
            "shows no dependency edges, descriptions or critical path."
        )
    needs = _needs(pipe, ids)
    end = _last_time(detail)
    metrics = compute_run_metrics(from_detail(detail, needs), now=end)
    words, baselines = step_baselines(state_dir, run, ids, baseline)
    levels = _levels(run.pipeline, ids, needs)
    level_of = {s: i for i, level in enumerate(levels) for s in level}
    groups, dead = _items(detail.items, pipe)
    critical = frozenset(metrics.critical_path)
    wall = metrics.wall_seconds
    steps = []
    for row in detail.steps:
        duration = metrics.step_duration.get(row.step)
        base = baselines.get(row.step)
        described = pipe.steps[row.step].description if pipe is not None and row.step in pipe.steps else None
        steps.append(
            StepView(
                step=row.step,
                status=row.status,
                description=described,
                needs=needs.get(row.step, ()),
                level=level_of.get(row.step, 0),
                ready_at=row.ready_at,
                finished_at=row.finished_at,
                duration=duration,
                share=duration / wall if duration is not None and wall > 0 else None,
                attempts=attempt_rows(row),
                exit_code=row.exit_code,
                reason=row.reason,
                critical=row.step in critical,
                baseline=base,
                delta=(duration - base) / base if duration is not None and base else None,
                slower=is_slower(duration, base),
                log_tail=_tail(state_dir, row) if row.status in _FAILED else (),
                items=groups.get(row.step),
            )
        )
    failures = _failures(run.root_failure, [s for s in steps if s.status in _FAILED])
    return RunReport(
        header=_header(run, wall),
        steps=tuple(steps),
        metrics=metrics,
        baseline=words,
        levels=levels,
        failures=failures,
        notes=tuple(notes),
        dead_letters=tuple(dead[:DEAD_SHOWN]),
        dead_total=len(dead),
        generated_at=generated_at,
    )


def _items(records: Sequence[ItemRecord], pipe: Pipeline | None) -> tuple[dict[str, ItemGroup], list[ItemRecord]]:
    """Each foreach step's items grouped as ``flowctl show`` groups them (``state.items``), and
    the run's dead-letter queue. Keys are stored as they are (they are the items' identity), so
    keys, values and tails are masked here with the values of the pipeline's ``secret_env``
    variables set now (values and tails were masked when recorded; masking twice is harmless)."""
    from flowctl.state.deadletter import QUEUED
    from flowctl.state.items import summarize

    if not records:
        return {}, []
    records = [_masked(r, _secret_values(pipe)) for r in records]
    spans: dict[str, tuple[list[float], list[float]]] = {}
    for r in records:
        starts, ends = spans.setdefault(r.step, ([], []))
        starts += [r.started_at] if r.started_at is not None else []
        ends += [r.finished_at] if r.finished_at is not None else []
    groups = {
        s.step: ItemGroup(s, min(spans[s.step][0], default=None), max(spans[s.step][1], default=None))
        for s in summarize(records)
    }
    return groups, [r for r in records if r.status in QUEUED]


def _secret_values(pipe: Pipeline | None) -> tuple[str, ...]:
    if pipe is None:
        return ()
    names = set(pipe.secret_env).union(*(s.secret_env for s in pipe.steps.values()))
    return tuple(os.environ[n] for n in sorted(names) if os.environ.get(n))


def _masked(record: ItemRecord, secrets: tuple[str, ...]) -> ItemRecord:
    import dataclasses

    from flowctl.masking import mask_text

    if not secrets:
        return record
    value = json.dumps(record.item, sort_keys=True)
    masked = mask_text(value, secrets)
    return dataclasses.replace(
        record, key=mask_text(record.key, secrets), item=record.item if masked == value else masked,
        tail=tuple(mask_text(line, secrets) for line in record.tail),
        error=None if record.error is None else mask_text(record.error, secrets),
    )


def _needs(pipe: Pipeline | None, ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Each step's ``needs`` within the run's own steps (a selection cuts edges at its border)."""
    if pipe is None:
        return {}
    inside = set(ids)
    return {s: tuple(n for n in pipe.steps[s].needs if n in inside) for s in ids if s in pipe.steps}


def _levels(name: str, ids: Sequence[str], needs: Mapping[str, tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    """The plan's levels (``graph.plan.compile_plan``) over the run's steps and edges."""
    from flowctl.graph.plan import compile_plan
    from flowctl.spec.model import Pipeline, Step

    steps = {s: Step(id=s, run="", needs=needs.get(s, ())) for s in ids}
    return compile_plan(Pipeline(path="", name=name, steps=steps)).levels


def _last_time(detail: RunDetail) -> float:
    """The run's end, or for one that never recorded an end the last time it recorded at all
    (a report of the same records is the same whenever it is made)."""
    if detail.run.finished_at is not None:
        return detail.run.finished_at
    times = [detail.run.started_at]
    for step in detail.steps:
        times += [t for t in (step.ready_at, step.started_at, step.finished_at) if t is not None]
        for a in step.attempt_records:
            times += [t for t in (a.started_at, a.finished_at) if t is not None]
    return max(times)


def attempt_rows(step: StepRecord) -> tuple[AttemptRow, ...]:
    """The step's attempts as Gantt rows: what each waited for (ready, or the back-off after the
    previous attempt, then a free slot), when it ran and how it ended."""
    rows: list[AttemptRow] = []
    previous = None
    for a in step.attempt_records:
        if a.started_at is None:
            continue
        backoff_from = backoff = None
        if previous is None:
            waited_from = step.ready_at
        else:
            backoff_from, backoff = previous.finished_at, previous.retry_delay
            waited_from = backoff_from + backoff if backoff_from is not None and backoff else backoff_from
        rows.append(
            AttemptRow(
                attempt=a.attempt,
                kind=a.kind,
                started_at=a.started_at,
                finished_at=a.finished_at,
                outcome=a.outcome or "running",
                exit_code=a.exit_code,
                error=a.error,
                waited_from=waited_from if waited_from is not None and waited_from < a.started_at else None,
                backoff_from=backoff_from,
                backoff=backoff,
            )
        )
        previous = a
    return tuple(rows)


def _tail(state_dir: str | os.PathLike[str], step: StepRecord) -> tuple[str, ...]:
    from flowctl.run.executors.local import read_tail
    from flowctl.state.views import attempt_log

    if not step.attempt_records:
        return ()
    path = attempt_log(state_dir, step.attempt_records[-1])
    return tuple(line[:LINE_CHARS] for line in read_tail(str(path)))


def _failures(root: str | None, failed: Sequence[StepView]) -> tuple[str, ...]:
    """Failed steps, the root failure first, then in the order they ended."""
    ordered = sorted(failed, key=lambda s: (s.step != root, s.finished_at is None, s.finished_at or 0.0))
    return tuple(s.step for s in ordered)


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def chaos_seed(run: RunRecord) -> str | None:
    """The chaos seed a run recorded (issue 17 keeps its settings in the run's provenance as
    ``chaos: {seed: …}``); None for a run without chaos."""
    chaos = run.provenance.get("chaos")
    seed = chaos.get("seed") if isinstance(chaos, Mapping) else None
    return None if seed is None else _text(seed)


def _header(run: RunRecord, wall: float) -> Header:
    prov = run.provenance
    ref, commit, dirty = prov.get("git_ref"), prov.get("git_commit"), prov.get("git_dirty")
    return Header(
        pipeline=run.pipeline,
        run_id=run.run_id,
        status=run.status,
        started_at=run.started_at,
        finished_at=run.finished_at,
        wall_seconds=wall,
        release=str(ref) if ref else None,
        commit=str(commit) if commit else None,
        dirty=dirty if isinstance(dirty, bool) else None,
        chaos_seed=chaos_seed(run),
        resumed_from=run.resumed_from,
        root_failure=run.root_failure,
        params=tuple(sorted((str(k), _text(v)) for k, v in run.params.items())),
        counts=dict(sorted(run.counts.items())),
    )


def build_history_report(
    state_dir: str | os.PathLike[str],
    pipeline: str,
    *,
    last: int = 50,
    needs: Mapping[str, tuple[str, ...]] | None = None,
    generated_at: float | None = None,
) -> HistoryReport:
    """The history page of ``pipeline`` (its name or file): its ``last`` runs. Raises
    ``UsageError`` when none was recorded."""
    newest_first = history_metrics(state_dir, pipeline, last=last, needs=needs)
    if not newest_first:
        raise UsageError(
            f"no runs of {pipeline!r} recorded in {state_dir}",
            hint="`flowctl runs` lists what was recorded; --state-dir picks another state folder",
        )
    name = newest_first[0].pipeline
    stats = pipeline_stats(name, newest_first)
    runs = tuple(reversed(newest_first))
    trends = []
    for s in stats.steps:
        durations = tuple(r.step_duration.get(s.step) for r in runs)
        done = [d for d in durations if d is not None]
        counts = [r.step_attempts.get(s.step, 0) for r in runs]
        trends.append(
            StepTrend(
                step=s.step,
                durations=durations,
                p50=percentile(done, 50),
                p95=percentile(done, 95),
                rolling_p50=_rolling(durations, 50),
                rolling_p95=_rolling(durations, 95),
                runs=s.runs,
                retries=sum(max(0, n - 1) for n in counts),
                runs_with_retries=sum(1 for n in counts if n > 1),
                failed_runs=s.failed_runs,
            )
        )
    return HistoryReport(
        pipeline=name,
        runs=tuple(
            HistoryRun(r.run_id, r.status.value, r.started_at, r.wall_seconds if r.finished_at is not None else None)
            for r in runs
        ),
        stats=stats,
        steps=tuple(trends),
        window=BASELINE_RUNS,
        generated_at=generated_at,
    )


def _rolling(values: Sequence[float | None], q: float, window: int = BASELINE_RUNS) -> tuple[float | None, ...]:
    """At each run, the ``q``-th percentile of the step's last ``window`` execution times so far."""
    out: list[float | None] = []
    seen: list[float] = []
    for v in values:
        if v is not None:
            seen.append(v)
        out.append(percentile(seen[-window:], q) if v is not None else None)
    return tuple(out)



__all__ = ["LINE_CHARS", "attempt_rows", "build_history_report", "build_run_report", "chaos_seed"]
