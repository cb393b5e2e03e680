"""The cron fields a schedule gets on this machine, and when a zone needs the run-side guard.

Debian's cron (Vixie cron 3.0) has no ``CRON_TZ``: it reads every line in the zone the daemon
runs in. A pipeline whose ``timezone:`` keeps the same clock as the machine's zone is installed
with its own expression. Any other zone is installed with a wider line, every machine-local
minute and hour that some fire time of the pipeline can fall on (over the offsets the two zones
take in the next 13 months, and the ends of DST gaps for fixed-time jobs; every hour when the
machine's own zone has DST, so cron follows its wall clock through a repeated hour), and the run it starts
carries ``--scheduled``, which exits 0 without running when the current minute is not a fire time
in the pipeline's zone (``fire.due_fire_time``). The same guard works under any cron (cronie,
busybox, macOS), and the fire times follow the zone's own DST rules, not the machine's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from flowctl.schedule.fire import UTC, Schedule

_SAMPLE = timedelta(hours=1)
_HORIZON = timedelta(days=400)


@dataclass(frozen=True, slots=True)
class CronFields:
    """What goes before the command on a crontab line."""

    fields: str  # five cron fields (or a macro)
    guarded: bool  # wider than the schedule: the run skips firings that are not due


def machine_fields(schedule: Schedule, machine_tz: tzinfo, now: datetime) -> CronFields:
    """The cron fields for ``schedule`` on a machine whose cron runs in ``machine_tz``."""
    if not schedule.explicit_tz or same_clock(schedule.tz, machine_tz, now):
        return CronFields(fields=schedule.cron.text, guarded=False)
    shifts = _offset_differences(schedule.tz, machine_tz, now)
    wall_times = {(h, m) for h in schedule.cron.hours for m in schedule.cron.minutes}
    if schedule.cron.fixed_time:
        for start, end in _gaps(schedule.tz, now):
            if any(start <= h * 60 + m < end for h, m in wall_times):
                wall_times.add(divmod(end % (24 * 60), 60))
    minutes: set[int] = set()
    hours: set[int] = set()
    for hour, minute in wall_times:
        for shift in shifts:
            local = (hour * 60 + minute - shift) % (24 * 60)
            hours.add(local // 60)
            minutes.add(local % 60)
    if _offsets(machine_tz, now) != 1:
        # The machine's clock repeats an hour in autumn, and cron runs a fixed-time line only
        # in the first pass; a line with "*" in its hour field follows the wall clock through
        # both passes, so every real instant with a listed minute fires and the guard picks.
        hours = set(range(24))
    fields = f"{_list(minutes, 60)} {_list(hours, 24)} * * *"
    return CronFields(fields=fields, guarded=True)


def same_clock(a: tzinfo, b: tzinfo, now: datetime) -> bool:
    """Whether two zones show the same wall time at every hour of the next 13 months."""
    return _offset_differences(a, b, now) == {0}


def _offset_differences(zone: tzinfo, machine: tzinfo, now: datetime) -> set[int]:
    """Minutes by which ``zone``'s wall clock is ahead of ``machine``'s, over the horizon."""
    out: set[int] = set()
    instant = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = instant + _HORIZON
    while instant < end:
        a = instant.astimezone(zone).utcoffset() or timedelta(0)
        b = instant.astimezone(machine).utcoffset() or timedelta(0)
        out.add(int((a - b).total_seconds()) // 60)
        instant += _SAMPLE
    return out


def _offsets(zone: tzinfo, now: datetime) -> int:
    """How many different UTC offsets ``zone`` takes over the horizon (1: no DST)."""
    seen: set[timedelta | None] = set()
    instant = now.astimezone(UTC)
    for day in range(0, _HORIZON.days, 7):
        seen.add((instant + timedelta(days=day)).astimezone(zone).utcoffset())
    return len(seen)


def _gaps(zone: tzinfo, now: datetime) -> set[tuple[int, int]]:
    """Wall-clock minutes of the day [start, end) the zone skips when it jumps forward."""
    out: set[tuple[int, int]] = set()
    instant = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = instant + _HORIZON
    before = instant.astimezone(zone).utcoffset()
    while instant < end:
        after_instant = instant + _SAMPLE
        after = after_instant.astimezone(zone).utcoffset()
        if before is not None and after is not None and after > before:
            low, high = instant, after_instant  # the jump is in (low, high]
            while high - low > timedelta(minutes=1):
                mid = low + (high - low) / 2
                mid = mid.replace(second=0, microsecond=0)
                if mid <= low:
                    break
                if mid.astimezone(zone).utcoffset() == before:
                    low = mid
                else:
                    high = mid
            wall = high.astimezone(zone)
            end_minute = wall.hour * 60 + wall.minute
            skipped = int((after - before).total_seconds()) // 60
            out.add((end_minute - skipped, end_minute))
        before = after
        instant = after_instant
    return out


def _list(values: set[int], size: int) -> str:
    if len(values) == size:
        return "*"
    return ",".join(str(v) for v in sorted(values))


__all__ = ["CronFields", "machine_fields", "same_clock"]
