"""Fire times in the pipeline's zone, across daylight-saving changes, as cron fires them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flowctl.errors import UsageError
from flowctl.schedule.fire import due_fire_time, grace, make_schedule, next_fire_times
from flowctl.spec.cron import CronSyntaxError


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def fires(expr: str, tz: str | None, after: datetime, count: int) -> list[str]:
    """Fire times as 'local wall time offset' strings, easy to read in assertions."""
    schedule = make_schedule(expr, tz)
    return [t.strftime("%Y-%m-%d %H:%M %z") for t in next_fire_times(schedule, after, count)]


def test_times_are_read_in_the_pipelines_zone() -> None:
    assert fires("0 2 * * *", "Europe/Berlin", utc(2026, 1, 5), 2) == [
        "2026-01-05 02:00 +0100",
        "2026-01-06 02:00 +0100",
    ]
    first = next_fire_times(make_schedule("0 2 * * *", "Europe/Berlin"), utc(2026, 1, 5), 1)[0]
    assert first.astimezone(UTC) == utc(2026, 1, 5, 1, 0)


def test_no_timezone_means_the_machines_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    schedule = make_schedule("0 9 * * *", None)
    assert schedule.tz_name == "local (Asia/Tokyo)"
    (first,) = next_fire_times(schedule, utc(2026, 5, 31, 12), 1)
    assert first.astimezone(UTC) == utc(2026, 6, 1, 0, 0)


def test_an_explicit_zone_ignores_the_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    a = fires("30 2 * * *", "America/New_York", utc(2026, 3, 1), 10)
    monkeypatch.setenv("TZ", "UTC")
    assert fires("30 2 * * *", "America/New_York", utc(2026, 3, 1), 10) == a


def test_spring_forward_fixed_time_job_fires_once_at_the_end_of_the_gap() -> None:
    # 2026-03-08: New York clocks jump from 02:00 EST to 03:00 EDT; 02:30 does not exist.
    assert fires("30 2 * * *", "America/New_York", utc(2026, 3, 7, 12), 3) == [
        "2026-03-08 03:00 -0400",
        "2026-03-09 02:30 -0400",
        "2026-03-10 02:30 -0400",
    ]


def test_spring_forward_two_times_in_the_gap_fire_once() -> None:
    assert fires("0,30 2 * * *", "America/New_York", utc(2026, 3, 7, 12), 3) == [
        "2026-03-08 03:00 -0400",
        "2026-03-09 02:00 -0400",
        "2026-03-09 02:30 -0400",
    ]


def test_spring_forward_star_job_skips_the_missing_times() -> None:
    assert fires("*/30 * * * *", "America/New_York", utc(2026, 3, 8, 5, 15), 4) == [
        "2026-03-08 00:30 -0500",
        "2026-03-08 01:00 -0500",
        "2026-03-08 01:30 -0500",
        "2026-03-08 03:00 -0400",
    ]


def test_fall_back_fixed_time_job_fires_once_in_the_first_pass() -> None:
    # 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:30 happens twice.
    assert fires("30 1 * * *", "America/New_York", utc(2026, 10, 31, 12), 2) == [
        "2026-11-01 01:30 -0400",
        "2026-11-02 01:30 -0500",
    ]


def test_fall_back_star_job_fires_in_both_passes_in_order() -> None:
    assert fires("*/30 * * * *", "America/New_York", utc(2026, 11, 1, 4, 45), 6) == [
        "2026-11-01 01:00 -0400",
        "2026-11-01 01:30 -0400",
        "2026-11-01 01:00 -0500",
        "2026-11-01 01:30 -0500",
        "2026-11-01 02:00 -0500",
        "2026-11-01 02:30 -0500",
    ]


def test_hourly_in_the_repeated_hour_fires_twice() -> None:
    times = next_fire_times(make_schedule("@hourly", "Europe/Berlin"), utc(2026, 10, 24, 23, 30), 4)
    # 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:00 comes twice, an hour apart in real time.
    assert [t.astimezone(UTC).hour for t in times] == [0, 1, 2, 3]
    assert [t.hour for t in times] == [2, 2, 3, 4]


def test_half_hour_dst_zone() -> None:
    # Lord Howe Island moves its clocks by 30 minutes: 02:00 -> 02:30 on 2026-10-04.
    assert fires("15 2 * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 0), 2) == [
        "2026-10-04 02:30 +1100",
        "2026-10-05 02:15 +1100",
    ]


def test_midnight_across_a_change_stays_at_local_midnight() -> None:
    times = next_fire_times(make_schedule("@daily", "Europe/Berlin"), utc(2026, 3, 28, 12), 2)
    assert [t.strftime("%H:%M") for t in times] == ["00:00", "00:00"]
    assert [t.astimezone(UTC).hour for t in times] == [23, 22]


def test_grace_is_half_the_interval_capped_at_15_minutes() -> None:
    minutely = make_schedule("* * * * *", "UTC")
    assert grace(minutely, utc(2026, 1, 1, 0, 0)) == timedelta(seconds=30)
    daily = make_schedule("0 2 * * *", "UTC")
    assert grace(daily, utc(2026, 1, 1, 2, 0)) == timedelta(minutes=15)


def test_due_fire_time_accepts_a_firing_inside_its_window_only() -> None:
    schedule = make_schedule("0 2 * * *", "Europe/Berlin")
    assert due_fire_time(schedule, utc(2026, 1, 5, 1, 0, 0)) == utc(2026, 1, 5, 1, 0)
    assert due_fire_time(schedule, utc(2026, 1, 5, 1, 14, 59)) == utc(2026, 1, 5, 1, 0)
    assert due_fire_time(schedule, utc(2026, 1, 5, 1, 15, 0)) is None
    assert due_fire_time(schedule, utc(2026, 1, 5, 0, 59, 59)) is None
    assert due_fire_time(schedule, utc(2026, 1, 5, 2, 0)) is None  # 02:00 UTC is 03:00 Berlin


def test_due_at_the_end_of_a_spring_forward_gap() -> None:
    schedule = make_schedule("30 2 * * *", "America/New_York")
    assert due_fire_time(schedule, utc(2026, 3, 8, 7, 0, 5)) == utc(2026, 3, 8, 7, 0)


def test_a_date_that_never_comes_is_refused() -> None:
    with pytest.raises(CronSyntaxError, match="never fires"):
        make_schedule("0 0 30 2 *", None)


def test_an_unknown_zone_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown time zone"):
        make_schedule("0 2 * * *", "Mars/Olympus_Mons")
