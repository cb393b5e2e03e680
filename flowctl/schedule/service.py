"""The operations behind ``flowctl schedule``: list, install, uninstall, next.

Owns finding and loading the pipelines (the shared ``spec.discover_pipelines`` when no path is
given), reading recorded runs through the state store's views (``StateHistory``), and putting
the pieces of ``schedule/`` together for the CLI, which only parses options and renders.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from flowctl.errors import FlowctlError, UsageError
from flowctl.schedule.crontab import Entry, Target, open_target, read_entries
from flowctl.schedule.fire import Schedule, make_schedule, next_fire_times
from flowctl.schedule.install import InstallOptions, InstallResult, install, uninstall
from flowctl.schedule.status import RunRecord, ScheduleStatus, schedule_status
from flowctl.spec.model import Pipeline


def load_pipelines(paths: Sequence[str | os.PathLike[str]]) -> list[Pipeline]:
    """The pipelines in ``paths`` (files or folders), or every one under ``pipelines/``.

    Raises PipelineError for an invalid file, UsageError when nothing is found.
    """
    from flowctl.spec import load_pipeline
    from flowctl.spec.validation import expand_paths

    return [load_pipeline(str(f)) for f in expand_paths(paths)]


class StateHistory:
    """Runs of a pipeline from its state folder (``schedule.status.RunHistory``)."""

    def __init__(self, state_dir: str | None, entries: Sequence[Entry] = ()) -> None:
        self.state_dir = state_dir
        self._installed = {e.pipeline: e for e in entries}

    def _dir(self, pipeline: Pipeline) -> str:
        from flowctl.state.views import state_dir_for

        entry = self._installed.get(os.path.abspath(pipeline.path))
        if self.state_dir is None and entry is not None and entry.state_dir:
            return entry.state_dir  # where the cron runs write
        return str(state_dir_for(self.state_dir, pipeline.path))

    def _records(self, pipeline: Pipeline) -> tuple[RunRecord, ...]:
        from flowctl.state.views import recent_runs

        # By name: runs started with a relative path record it as given.
        runs = recent_runs(self._dir(pipeline), pipeline.name, limit=None)
        return tuple(
            RunRecord(
                run_id=r.run_id,
                started_at=datetime.fromtimestamp(r.started_at, UTC),
                status=r.status,
                scheduled_at=(
                    datetime.fromtimestamp(r.fire_time, UTC) if r.fire_time else None
                ),
            )
            for r in reversed(runs)
        )

    def runs(self, pipeline: Pipeline, since: datetime) -> Sequence[RunRecord]:
        return [r for r in self._records(pipeline) if r.started_at >= since]

    def last_run(self, pipeline: Pipeline) -> RunRecord | None:
        records = self._records(pipeline)
        return records[-1] if records else None


@dataclass(frozen=True, slots=True)
class ScheduleList:
    statuses: tuple[ScheduleStatus, ...]
    unscheduled: tuple[str, ...]  # pipelines given that have no schedule
    target: str | None  # where install times were read, None when no crontab could be read
    note: str | None  # why install times are unknown


def list_schedules(
    paths: Sequence[str],
    *,
    file: str | None,
    cron_d: str | None,
    state_dir: str | None,
    now: datetime,
) -> ScheduleList:
    """Every scheduled pipeline's words, next fire times, last run and missed runs."""
    pipelines = load_pipelines(paths)
    entries: tuple[Entry, ...] = ()
    target_name: str | None = None
    note: str | None = None
    try:
        target = open_target(file, cron_d)
        entries = read_entries(target.read(), target.description)
        target_name = target.description
    except FlowctlError as exc:
        if file or cron_d:
            raise
        note = f"install times unknown: {exc.message}"
    by_path = {e.pipeline: e for e in entries}
    history = StateHistory(state_dir, entries)
    statuses = tuple(
        schedule_status(
            p, now=now, installed=by_path.get(os.path.abspath(p.path)), history=history,
            manual_state_dir=_manual_state_dir(p),
        )
        for p in pipelines
        if p.schedule
    )
    unscheduled = tuple(p.path for p in pipelines if not p.schedule)
    return ScheduleList(statuses, unscheduled, target_name, note)


def _manual_state_dir(pipeline: Pipeline) -> str | None:
    """The state folder ``flowctl run PIPELINE`` would use (None when that is an error)."""
    from flowctl.schedule.install import default_state_dir

    try:
        return default_state_dir(pipeline.path)
    except FlowctlError:
        return None


def install_schedules(
    paths: Sequence[str],
    options: InstallOptions,
    *,
    file: str | None,
    cron_d: str | None,
    now: datetime,
    dry_run: bool,
) -> InstallResult:
    """Write the block for the scheduled pipelines in ``paths`` into the chosen target.

    Raises PipelineError when a scheduled pipeline's secret is unset here (nothing is written).
    """
    from flowctl.schedule.fire import machine_zone
    from flowctl.spec import load_source
    from flowctl.spec.rules import Stage
    from flowctl.spec.validation import default_params, expand_paths, gate

    if options.ref is not None and not options.ref.strip():
        raise UsageError("--ref needs a tag, branch, commit or 'latest-release'")
    target = open_target(file, cron_d)
    sources = [load_source(str(f)) for f in expand_paths(paths)]
    # An unset secret would make every firing refuse (run exits 2): refuse now instead, while
    # someone is watching; an unset ${{ env.X }} is worth a warning (issue 13).
    warnings = tuple(
        gate(s, stage=Stage.INSTALL, params=default_params(s.pipeline), environ=os.environ)
        for s in sources if s.pipeline.schedule
    )
    machine_tz, _ = machine_zone()
    result = install(target, [s.pipeline for s in sources], options, now=now, machine_tz=machine_tz, dry_run=dry_run)
    return replace(result, warnings=tuple(w for w in warnings if w.diagnostics))


def uninstall_schedules(*, file: str | None, cron_d: str | None, dry_run: bool) -> InstallResult:
    """Remove the block from the chosen target (and an emptied cron.d file)."""
    target: Target = open_target(file, cron_d)
    result = uninstall(target, dry_run=dry_run)
    if cron_d and result.changed and not dry_run and not result.text.strip():
        os.unlink(target.description)  # an empty cron.d file is clutter
    return result


@dataclass(frozen=True, slots=True)
class Firing:
    """Whether a ``run --scheduled`` started now is due, and the fire time it belongs to."""

    due: bool
    fire_time: float | None  # epoch seconds
    message: str  # one plain line for the cron log


def due_firing(pipeline: Pipeline, now: datetime | None = None) -> Firing:
    """The guard of ``flowctl run --scheduled``: is ``now`` inside a fire time's window?

    Raises UsageError when the pipeline has no schedule (a line installed for it is stale).
    """
    from flowctl.schedule.fire import due_fire_time

    if not pipeline.schedule:
        raise UsageError(
            f"{pipeline.path}: --scheduled, but pipeline {pipeline.name!r} has no schedule",
            hint="run `flowctl schedule install` again (or `schedule uninstall`) to update cron",
        )
    moment = now or datetime.now(UTC)
    schedule = make_schedule(pipeline.schedule, pipeline.timezone)
    fire = due_fire_time(schedule, moment)
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if fire is None:
        local = moment.astimezone(schedule.tz).strftime("%Y-%m-%d %H:%M %Z")
        return Firing(
            False,
            None,
            f"{stamp} {pipeline.name}: not due at {local} ({schedule.cron.text} in "
            f"{schedule.tz_name}); nothing to run",
        )
    return Firing(True, fire.timestamp(), f"{stamp} {pipeline.name}: fire time {fire.isoformat()}")


def upcoming(pipeline_path: str, *, count: int, after: datetime) -> tuple[Schedule, tuple[datetime, ...]]:
    """The schedule of one pipeline and its next ``count`` fire times after ``after``."""
    if count < 1:
        raise UsageError("--count must be at least 1")
    from flowctl.spec import require_pipeline_file

    require_pipeline_file(pipeline_path)
    (pipeline,) = load_pipelines([pipeline_path])
    if not pipeline.schedule:
        raise UsageError(
            f"{pipeline.path}: pipeline {pipeline.name!r} has no schedule",
            hint="add e.g. `schedule: \"0 2 * * *\"` to it",
        )
    schedule = make_schedule(pipeline.schedule, pipeline.timezone)
    return schedule, next_fire_times(schedule, after, count)


__all__ = [
    "Firing",
    "ScheduleList",
    "StateHistory",
    "due_firing",
    "install_schedules",
    "list_schedules",
    "load_pipelines",
    "uninstall_schedules",
    "upcoming",
]
