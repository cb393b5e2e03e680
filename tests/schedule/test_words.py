"""The expression in words."""

from __future__ import annotations

import pytest

from flowctl.schedule.words import describe
from flowctl.spec.cron import parse_cron


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0 2 * * *", "at 02:00 every day"),
        ("*/15 * * * *", "every 15 minutes"),
        ("30 6 * * 1-5", "at 06:30 on Monday through Friday"),
        ("30 6 * * mon-fri", "at 06:30 on Monday through Friday"),
        ("@daily", "at 00:00 every day"),
        ("@midnight", "at 00:00 every day"),
        ("@hourly", "every hour"),
        ("@weekly", "at 00:00 on Sunday"),
        ("@monthly", "at 00:00 on day 1 of every month"),
        ("@yearly", "at 00:00 on day 1 of January"),
        ("* * * * *", "every minute"),
        ("5 * * * *", "at 5 minutes past every hour"),
        ("0 */2 * * *", "every 2 hours"),
        ("30 */6 * * *", "every 6 hours at 30 minutes past the hour"),
        ("0 9,17 * * *", "at 09:00 and 17:00 every day"),
        ("0 0 1,15 * *", "at 00:00 on days 1 and 15 of every month"),
        ("0 0 1 * 1", "at 00:00 on day 1 of every month or on Monday"),
        ("*/10 9-17 * * 1-5", "every 10 minutes between 09:00 and 17:59 on Monday through Friday"),
        ("0 12 * 1-3 *", "at 12:00 every day in January through March"),
        ("15 4 * * 0,6", "at 04:15 on Sunday and Saturday"),
        ("0 8 * * 7", "at 08:00 on Sunday"),
        ("0 9-17 * * *", "every hour from 09:00 through 17:00 every day"),
        ("0,30 * * * *", "at minutes 0 and 30 of every hour"),
        ("0 0 1 1,7 *", "at 00:00 on day 1 of January and July"),
    ],
)
def test_words(text: str, words: str) -> None:
    assert describe(parse_cron(text)) == words
