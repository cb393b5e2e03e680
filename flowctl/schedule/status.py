"""What ``flowctl schedule list`` reports per pipeline: words, next fire times, last run, missed runs.

Also flags an installed line whose state folder (and so its overlap lock) is not the one a
manual ``flowctl run`` of the pipeline would use now. Owns missed-run detection: a fire time after the schedule was installed is missed when no run
of the pipeline started between it and its grace window later (min(half the interval to the next
fire time, 15 minutes); see ``fire.grace``). Only fire times whose window has closed are judged,
and only within ``LOOKBACK`` (7 days) so a minutely schedule stays cheap. Runs come from a
``RunHistory`` (the CLI adapts the state store's queries to it); nothing here reads SQLite.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from flowctl.schedule.crontab import Entry
from flowctl.schedule.fire import (
    MAX_GRACE,
    UTC,
    Schedule,
    fire_times,
    make_schedule,
    next_fire_times,
)
from flowctl.schedule.words import describe
from flowctl.spec.model import Pipeline

#: How far back missed runs are looked for.
LOOKBACK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run of a pipeline, as far as scheduling cares."""

    run_id: str
    started_at: datetime  # aware
    status: str  # a RunStatus value: running, succeeded, failed, cancelled, interrupted
    scheduled_at: datetime | None = None  # the fire time, for runs started by cron


class RunHistory(Protocol):
    """Recorded runs of a pipeline, oldest first."""

    def runs(self, pipeline: Pipeline, since: datetime) -> Sequence[RunRecord]: ...

    def last_run(self, pipeline: Pipeline) -> RunRecord | None: ...


@dataclass(frozen=True, slots=True)
class ScheduleStatus:
    pipeline: str  # the path as given
    name: str
    expression: str
    timezone: str
    words: str
    next_fires: tuple[datetime, ...]
    installed: Entry | None
    last_run: RunRecord | None
    missed: tuple[datetime, ...]  # oldest first
    missed_since: datetime | None  # the start of the window missed runs were looked for in
    manual_state_dir: str | None = None  # where a plain `flowctl run PIPELINE` keeps state now

    @property
    def stale(self) -> bool:
        """The installed line was written for another schedule or zone: install again."""
        entry = self.installed
        return entry is not None and (
            entry.schedule != self.expression or (entry.timezone or None) != self.declared_zone
        )

    @property
    def state_dir_differs(self) -> bool:
        """The installed line keeps state (and the overlap lock) in another folder than a manual
        run would: the two could run at once and their histories are apart."""
        entry = self.installed
        if entry is None or not entry.state_dir or self.manual_state_dir is None:
            return False
        return os.path.realpath(entry.state_dir) != os.path.realpath(self.manual_state_dir)

    @property
    def declared_zone(self) -> str | None:
        return None if self.timezone.startswith("local (") else self.timezone


def missed_runs(
    schedule: Schedule,
    installed_at: datetime,
    starts: Sequence[datetime],
    now: datetime,
    *,
    lookback: timedelta = LOOKBACK,
) -> tuple[tuple[datetime, ...], datetime]:
    """Fire times in (max(installed_at, now - lookback), now] with no run start in their window.

    ``starts`` are the start times of the pipeline's runs (any order). Returns the missed fire
    times, oldest first, and the start of the window looked at.
    """
    since = max(installed_at, now - lookback)
    ordered = sorted(s.astimezone(UTC) for s in starts)
    missed: list[datetime] = []
    iterator = fire_times(schedule, since)
    fire = next(iterator)
    while fire <= now:
        following = next(iterator)
        window = min((following - fire) / 2, MAX_GRACE)
        if fire + window > now:
            break  # still inside its window: a run may yet start
        position = bisect.bisect_left(ordered, fire)
        if position >= len(ordered) or ordered[position] > fire + window:
            missed.append(fire)
        fire = following
    return tuple(missed), since


def schedule_status(
    pipeline: Pipeline,
    *,
    now: datetime,
    installed: Entry | None,
    history: RunHistory | None,
    count: int = 3,
    manual_state_dir: str | None = None,
) -> ScheduleStatus:
    """The ``schedule list`` row of one scheduled pipeline; ``manual_state_dir`` is the state
    folder a manual run would use, compared with the installed line's. Raises
    CronSyntaxError/UsageError."""
    if not pipeline.schedule:
        raise ValueError(f"{pipeline.path} has no schedule")
    schedule = make_schedule(pipeline.schedule, pipeline.timezone)
    last = history.last_run(pipeline) if history is not None else None
    missed: tuple[datetime, ...] = ()
    since: datetime | None = None
    if installed is not None and history is not None:
        window_start = max(installed.installed_at, now - LOOKBACK) - MAX_GRACE
        starts = [r.started_at for r in history.runs(pipeline, window_start)]
        missed, since = missed_runs(schedule, installed.installed_at, starts, now)
    return ScheduleStatus(
        pipeline=pipeline.path,
        name=pipeline.name,
        expression=schedule.cron.text,
        timezone=schedule.tz_name,
        words=describe(schedule.cron),
        next_fires=next_fire_times(schedule, now, count),
        installed=installed,
        last_run=last,
        missed=missed,
        missed_since=since,
        manual_state_dir=manual_state_dir,
    )


__all__ = [
    "LOOKBACK",
    "RunHistory",
    "RunRecord",
    "ScheduleStatus",
    "missed_runs",
    "schedule_status",
]
