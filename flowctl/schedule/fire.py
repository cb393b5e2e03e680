"""Fire times of a pipeline's schedule in its time zone, with cron's daylight-saving rules.

Owns ``Schedule`` (a checked expression plus the zone it is read in), the fire-time iterator,
the window a firing counts as on time (``grace``) and ``due_fire_time``, the check a
``flowctl run --scheduled`` makes before it runs. croniter walks the wall clock; this module maps
each wall time onto real instants the way Vixie/Debian cron (and cronie with ``CRON_TZ``) do:

* spring forward (a wall time that does not exist, e.g. 02:30 on the night clocks jump from
  02:00 to 03:00): a fixed-time job (no ``*`` in its minute or hour field) fires once at the end
  of the gap (03:00); a job with ``*`` in its minute or hour field skips the missing times;
* fall back (a wall time that happens twice, e.g. 01:30 when 02:00 becomes 01:00): a fixed-time
  job fires once, at the first occurrence; a ``*`` job fires in both passes.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flowctl.errors import UsageError
from flowctl.spec.cron import CronExpr, CronSyntaxError, parse_cron

#: The longest a firing may start after its fire time and still count as that firing.
MAX_GRACE = timedelta(minutes=15)
# Offsets of a zone never move by more than this at one transition (DST is 30 min to 2 h).
_MAX_SHIFT = timedelta(hours=3)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A pipeline's ``schedule:`` read in its ``timezone:`` (or the machine's zone)."""

    cron: CronExpr
    tz: tzinfo
    tz_name: str  # the IANA name, or "local (NAME)" for the machine's zone
    explicit_tz: bool  # the pipeline named a zone


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``. Raises UsageError when tzdata does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UsageError(
            f"unknown time zone {name!r}",
            hint="use an IANA name such as 'Europe/Berlin', 'America/New_York' or 'UTC'",
        ) from None


def machine_zone() -> tuple[tzinfo, str]:
    """The zone cron on this machine reads crontabs in: ``TZ``, else /etc/localtime."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    try:
        target = os.path.realpath("/etc/localtime")
        marker = "zoneinfo" + os.sep
        if marker in target:
            zone_name = target.split(marker, 1)[1]
            return ZoneInfo(zone_name), zone_name
        with open("/etc/localtime", "rb") as fh:
            return ZoneInfo.from_file(fh, key="localtime"), "localtime"
    except (OSError, ValueError, ZoneInfoNotFoundError):
        return UTC, "UTC"


def make_schedule(expression: str, tz_name: str | None) -> Schedule:
    """Check ``expression`` and ``tz_name``. Raises CronSyntaxError or UsageError."""
    cron = parse_cron(expression)
    if tz_name:
        tz: tzinfo = load_zone(tz_name)
        name, explicit = tz_name, True
    else:
        tz, local = machine_zone()
        name, explicit = f"local ({local})", False
    schedule = Schedule(cron=cron, tz=tz, tz_name=name, explicit_tz=explicit)
    _check_fires(schedule)
    return schedule


def _check_fires(schedule: Schedule) -> None:
    from croniter import CroniterBadDateError

    try:
        next(fire_times(schedule, datetime(2000, 1, 1, tzinfo=UTC)))
    except (CroniterBadDateError, StopIteration):
        raise CronSyntaxError(
            f"schedule {schedule.cron.text!r} never fires (no such date)",
            hint="check the day-of-month and month fields (e.g. 30 February never happens)",
        ) from None


def fire_times(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    """Fire instants strictly after ``after`` (aware), in order, as aware times in the zone."""
    from croniter import croniter

    tz = schedule.tz
    after = after.astimezone(UTC)
    start = after.astimezone(tz).replace(tzinfo=None) - _MAX_SHIFT
    walk = croniter(schedule.cron.expression, start, day_or=True)
    pending: list[datetime] = []
    last: datetime | None = None
    while True:
        wall = walk.get_next(datetime)
        instants = _instants(wall, tz, schedule.cron.fixed_time)
        for instant in instants:
            if instant > after:
                heapq.heappush(pending, instant)
        # Later wall times map to instants no earlier than this bound (offsets move < 3 h).
        bound = _plain(wall, tz) - _MAX_SHIFT
        while pending and pending[0] <= bound:
            instant = heapq.heappop(pending)
            if instant != last:
                last = instant
                yield instant.astimezone(tz)


def _plain(wall: datetime, tz: tzinfo) -> datetime:
    return wall.replace(tzinfo=tz).astimezone(UTC)


def _exists(wall: datetime, tz: tzinfo) -> bool:
    return _plain(wall, tz).astimezone(tz).replace(tzinfo=None) == wall


def _instants(wall: datetime, tz: tzinfo, fixed_time: bool) -> tuple[datetime, ...]:
    """The real instants a wall-clock match fires at (see the module docstring)."""
    if not _exists(wall, tz):
        if not fixed_time:
            return ()
        probe = wall
        for _ in range(24 * 60):  # walk to the end of the gap
            probe += timedelta(minutes=1)
            if _exists(probe, tz):
                return (_plain(probe, tz),)
        return ()
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second or fixed_time:
        return (first,)
    return (first, second)


def next_fire_times(schedule: Schedule, after: datetime, count: int) -> tuple[datetime, ...]:
    """The first ``count`` fire times after ``after``."""
    out: list[datetime] = []
    for instant in fire_times(schedule, after):
        if len(out) >= count:
            break
        out.append(instant)
    return tuple(out)


def grace(schedule: Schedule, fire: datetime) -> timedelta:
    """How long after ``fire`` a run may start and still count as that firing.

    min(half the time to the next fire time, 15 minutes): the window missed-run detection
    uses, and the one the ``--scheduled`` guard accepts.
    """
    following = next(fire_times(schedule, fire))
    return min((following - fire) / 2, MAX_GRACE)


def due_fire_time(schedule: Schedule, now: datetime) -> datetime | None:
    """The fire time ``now`` belongs to (``fire <= now < fire + grace``), or None: not due."""
    due: datetime | None = None
    times = fire_times(schedule, now - MAX_GRACE - timedelta(seconds=1))
    fire = next(times)
    while fire <= now:
        following = next(times)
        if now - fire < min((following - fire) / 2, MAX_GRACE):
            due = fire
        fire = following
    return due


__all__ = [
    "MAX_GRACE",
    "UTC",
    "Schedule",
    "due_fire_time",
    "fire_times",
    "grace",
    "load_zone",
    "machine_zone",
    "make_schedule",
    "next_fire_times",
]
