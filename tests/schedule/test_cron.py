"""Cron expressions: what cron accepts is accepted, what it would refuse is refused with a hint."""

from __future__ import annotations

import pytest

from flowctl.errors import ExitCode
from flowctl.spec.cron import CronSyntaxError, parse_cron


@pytest.mark.parametrize(
    ("text", "minutes", "hours", "weekdays"),
    [
        ("0 2 * * *", {0}, {2}, set(range(7))),
        ("*/15 * * * *", {0, 15, 30, 45}, set(range(24)), set(range(7))),
        ("30 6 * * 1-5", {30}, {6}, {1, 2, 3, 4, 5}),
        ("0 9 * * mon-fri", {0}, {9}, {1, 2, 3, 4, 5}),
        ("0 9 * * 7", {0}, {9}, {0}),  # 7 is Sunday too
        ("0,30 8-10/2 * * *", {0, 30}, {8, 10}, set(range(7))),
        ("  0   2 *  * * ", {0}, {2}, set(range(7))),
    ],
)
def test_fields_expand_like_cron(text: str, minutes: set[int], hours: set[int], weekdays: set[int]) -> None:
    expr = parse_cron(text)
    assert expr.minutes == minutes
    assert expr.hours == hours
    assert expr.weekdays == weekdays


def test_macros_expand_and_keep_their_name() -> None:
    daily = parse_cron("@daily")
    assert daily.expression == "0 0 * * *"
    assert daily.macro == "@daily"
    assert parse_cron("@HOURLY").expression == "0 * * * *"
    assert parse_cron("@yearly").months == frozenset({1})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("0 2 * *", "has 4 fields"),
        ("0 0 2 * * *", "has 6 fields"),  # croniter would read seconds; cron would not
        ("61 * * * *", "61 is out of range"),
        ("0 24 * * *", "24 is out of range"),
        ("0 0 L * *", "day of month field 'l'"),
        ("0 0 * * 5#3", "day of week field '5#3'"),
        ("0 0 ? * *", "day of month field '?'"),
        ("5/15 * * * *", "write 5-59/15"),
        ("0 10-2 * * *", "runs backwards"),
        ("*/0 * * * *", "minute field '*/0'"),
        ("0 0 * foo *", "month field 'foo'"),
        ("@reboot", "no fire times"),
        ("@fortnightly", "unknown schedule macro"),
    ],
)
def test_what_cron_refuses_is_refused(text: str, fragment: str) -> None:
    with pytest.raises(CronSyntaxError) as info:
        parse_cron(text)
    assert fragment in info.value.message
    assert info.value.hint
    assert info.value.exit_code == ExitCode.USAGE


def test_fixed_time_follows_crons_star_rule() -> None:
    assert parse_cron("30 2 * * *").fixed_time
    assert parse_cron("@daily").fixed_time
    assert not parse_cron("@hourly").fixed_time  # "0 *": star in the hour
    assert not parse_cron("*/5 2 * * *").fixed_time
    assert parse_cron("0,30 1-3 * * *").fixed_time
