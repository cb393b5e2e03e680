"""A cron expression in words: "at 02:00 every day", "every 15 minutes",
"at 06:30 on Monday through Friday".

Owns only the wording; the fields come from ``spec/cron.py``. Phrases are built from the
fields as written (``*/15``, ``1-5``), so a reader can match the words to the expression. When a
field is too irregular to say briefly, the words name its values instead of guessing.
"""

from __future__ import annotations

from flowctl.spec.cron import CronExpr

_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_MAX_TIMES = 6  # beyond this many clock times, describe minutes and hours separately


def describe(cron: CronExpr) -> str:
    """The expression in words, e.g. ``at 02:00 every day``."""
    days = _days(cron)
    time, hourly = _time(cron)
    if days == "every day" and hourly:
        return time
    return f"{time} {days}"


def _time(cron: CronExpr) -> tuple[str, bool]:
    """The time of day in words, and whether it repeats within every day (no "every day")."""
    minute, hour = cron.fields[0], cron.fields[1]
    minutes, hours = sorted(cron.minutes), sorted(cron.hours)
    all_minutes, all_hours = len(minutes) == 60, len(hours) == 24
    if all_minutes and all_hours:
        return "every minute", True
    if all_hours and _step(minute) is not None and minute.startswith("*"):
        return f"every {_step(minute)} minutes", True
    if all_hours and len(minutes) == 1:
        if minutes[0] == 0:
            return "every hour", True
        return f"at {minutes[0]} minutes past every hour", True
    if (
        len(minutes) == 1
        and hour.startswith("*/")
        and _step(hour) is not None
        and len(hours) == len(range(0, 24, _step(hour) or 1))
    ):
        every = f"every {_step(hour)} hours"
        if minutes[0] == 0:
            return every, True
        return f"{every} at {minutes[0]} minutes past the hour", True
    if len(minutes) * len(hours) <= _MAX_TIMES:
        return "at " + _join([f"{h:02d}:{m:02d}" for h in hours for m in minutes]), False
    if len(minutes) == 1 and _is_range(hour):
        m = minutes[0]
        return f"every hour from {hours[0]:02d}:{m:02d} through {hours[-1]:02d}:{m:02d}", False
    minute_part = _minute_words(minute, minutes, all_minutes)
    if all_hours:
        return f"{minute_part} of every hour", True
    return f"{minute_part} {_hour_words(hour, hours)}", False


def _minute_words(field: str, minutes: list[int], all_minutes: bool) -> str:
    if all_minutes:
        return "every minute"
    step = _step(field)
    if step is not None and field.startswith("*"):
        return f"every {step} minutes"
    return "at minutes " + _join([str(m) for m in minutes])


def _hour_words(field: str, hours: list[int]) -> str:
    if _is_range(field) or len(hours) == 1:
        return f"between {hours[0]:02d}:00 and {hours[-1]:02d}:59"
    return "during hours " + _join([f"{h:02d}" for h in hours])


def _is_range(field: str) -> bool:
    return "-" in field and "," not in field and "/" not in field


def _days(cron: CronExpr) -> str:
    day_part = _day_of_month(cron) if not cron.day_star else ""
    week_part = _weekdays(cron) if not cron.weekday_star else ""
    # cron fires when either field matches when both are restricted.
    text = f"{day_part} or {week_part}" if day_part and week_part else day_part or week_part
    months = _months(cron)
    if not text:
        return "every day" if not months else f"every day {months}"
    if months:
        text = text.replace(" of every month", "")
        if day_part and not week_part:
            return f"{text} {months.replace('in ', 'of ', 1)}"
        return f"{text} {months}"
    return text


def _day_of_month(cron: CronExpr) -> str:
    days = sorted(cron.days)
    if len(days) == 1:
        return f"on day {days[0]} of every month"
    return "on days " + _join([str(d) for d in days]) + " of every month"


def _weekdays(cron: CronExpr) -> str:
    field = cron.fields[4]
    days = sorted(cron.weekdays)
    # Say ranges as written ("Monday through Friday"), Sunday last when 7 was used.
    if _is_range(field):
        first, _, last = field.partition("-")
        start, end = _weekday_index(first), _weekday_index(last)
        if start is not None and end is not None:
            return f"on {_DAY_NAMES[start % 7]} through {_DAY_NAMES[end % 7]}"
    if len(days) == 7:
        return "on every day of the week"
    return "on " + _join([_DAY_NAMES[d] for d in days])


def _weekday_index(atom: str) -> int | None:
    if atom.isdigit():
        return int(atom)
    names = [d[:3].lower() for d in _DAY_NAMES]
    return names.index(atom) if atom in names else None


def _months(cron: CronExpr) -> str:
    if cron.fields[3].startswith("*") and len(cron.months) == 12:
        return ""
    months = sorted(cron.months)
    field = cron.fields[3]
    if len(months) > 2 and _is_range(field):
        return f"in {_MONTH_NAMES[months[0] - 1]} through {_MONTH_NAMES[months[-1] - 1]}"
    return "in " + _join([_MONTH_NAMES[m - 1] for m in months])


def _step(field: str) -> int | None:
    if "/" in field and "," not in field:
        tail = field.rsplit("/", 1)[1]
        return int(tail) if tail.isdigit() else None
    return None


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


__all__ = ["describe"]
