"""A schedule in another zone than the machine's: the installed line plus the run-side guard fire
exactly at the pipeline's fire times, across DST changes of either zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from flowctl.schedule.fire import due_fire_time, fire_times, make_schedule
from flowctl.schedule.guard import machine_fields, same_clock
from flowctl.spec.cron import parse_cron

NOW = datetime(2026, 10, 20, tzinfo=UTC)


def test_same_zone_keeps_the_expression() -> None:
    schedule = make_schedule("@daily", "Europe/Berlin")
    fields = machine_fields(schedule, ZoneInfo("Europe/Paris"), NOW)  # same clock all year
    assert (fields.fields, fields.guarded) == ("@daily", False)


def test_no_timezone_keeps_the_expression() -> None:
    fields = machine_fields(make_schedule("30 6 * * 1-5", None), ZoneInfo("Asia/Tokyo"), NOW)
    assert (fields.fields, fields.guarded) == ("30 6 * * 1-5", False)


def test_a_machine_without_dst_gets_only_the_hours_needed() -> None:
    fields = machine_fields(make_schedule("30 2 * * *", "America/New_York"), ZoneInfo("UTC"), NOW)
    # 02:30 EST/EDT is 07:30/06:30 UTC; 03:00 EDT (the end of the spring gap) is 07:00 UTC.
    assert fields.fields == "0,30 6,7,8 * * *"


def test_same_clock() -> None:
    assert same_clock(ZoneInfo("Europe/Berlin"), ZoneInfo("Europe/Rome"), NOW)
    assert not same_clock(ZoneInfo("Europe/London"), ZoneInfo("Europe/Berlin"), NOW)
    assert not same_clock(ZoneInfo("America/New_York"), ZoneInfo("UTC"), NOW)


def _machine_firings(fields: str, machine: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    cron = parse_cron(fields)
    out = []
    moment = start
    while moment < end:
        local = moment.astimezone(machine)
        if local.minute in cron.minutes and local.hour in cron.hours:
            out.append(moment)
        moment += timedelta(minutes=1)
    return out


@pytest.mark.parametrize(
    ("expr", "zone", "machine", "start", "days"),
    [
        # the pipeline's zone falls back on 2026-11-01 and springs forward on 2026-03-08
        ("30 2 * * *", "America/New_York", "UTC", datetime(2026, 10, 28, tzinfo=UTC), 7),
        ("30 2 * * *", "America/New_York", "UTC", datetime(2026, 3, 5, tzinfo=UTC), 7),
        # both zones change, a week apart (London 2026-10-25, New York 2026-11-01)
        ("0 9 * * 1-5", "Europe/London", "America/New_York", datetime(2026, 10, 22, tzinfo=UTC), 14),
        # a half-hour offset against a zone with DST
        ("*/20 * * * *", "Asia/Kolkata", "America/New_York", datetime(2026, 10, 31, tzinfo=UTC), 2),
        # the machine's zone repeats 01:00-02:00 on 2026-11-01; 06:30 UTC is then 01:30 EST
        ("30 6 * * *", "UTC", "America/New_York", datetime(2026, 10, 30, tzinfo=UTC), 4),
        # a 30-minute DST change (Lord Howe Island, 2026-10-04)
        ("15 2 * * *", "Australia/Lord_Howe", "UTC", datetime(2026, 10, 1, tzinfo=UTC), 6),
    ],
)
def test_guarded_line_fires_exactly_at_the_fire_times(
    expr: str, zone: str, machine: str, start: datetime, days: int
) -> None:
    schedule = make_schedule(expr, zone)
    machine_tz = ZoneInfo(machine)
    end = start + timedelta(days=days)
    fields = machine_fields(schedule, machine_tz, start)
    assert fields.guarded
    if machine != "UTC":
        # cron runs a fixed-time line once in a repeated hour; a "*" hour follows the wall clock.
        assert not parse_cron(fields.fields).fixed_time
    expected = []
    for fire in fire_times(schedule, start):
        if fire >= end:
            break
        expected.append(fire.astimezone(UTC))
    firings = _machine_firings(fields.fields, machine_tz, start, end)
    # Every fire time is a minute the installed line fires at ...
    assert set(expected) <= set(firings)
    # ... and the guard lets through exactly those firings (cron starts a few seconds late).
    accepted = [f for f in firings if due_fire_time(schedule, f + timedelta(seconds=3)) is not None]
    assert accepted == expected
    for fire in expected:
        assert due_fire_time(schedule, fire + timedelta(seconds=3)) == fire
