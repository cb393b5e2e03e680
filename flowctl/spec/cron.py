"""Cron expressions as cron itself reads them: parsing, checking and the expanded fields.

Owns the subset of cron syntax flowctl accepts for ``schedule:``: five fields (minute, hour,
day of month, month, day of week) made of ``*``, numbers, names (``jan``, ``mon``), ranges,
steps and lists, or one of the ``@`` macros (``@hourly``, ``@daily``/``@midnight``,
``@weekly``, ``@monthly``, ``@yearly``/``@annually``). croniter accepts more (seconds and year
fields, ``L``, ``W``, ``#``, ``?``), but Debian's cron rejects those, so an installed line would
never fire: they are refused here with a hint. Fire times live in ``schedule/fire.py``, words in
``schedule/words.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flowctl.errors import UsageError

#: The macros cron understands, with the five fields each stands for.
MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

_FIELDS = (
    # name, low, high, names (index 0 maps to ``low``)
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
)

_ATOM = r"(?:[0-9]+|[a-z]{3})"
_ITEM = re.compile(rf"^(?:\*|{_ATOM}(?:-{_ATOM})?)(?:/([0-9]+))?$")


class CronSyntaxError(UsageError):
    """A ``schedule:`` that cron would not accept."""


@dataclass(frozen=True, slots=True)
class CronExpr:
    """A checked cron expression and the values each field allows."""

    text: str  # as written (a macro stays a macro)
    fields: tuple[str, str, str, str, str]  # the five fields (a macro expanded)
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday; a written 7 is folded into 0

    @property
    def expression(self) -> str:
        """The five fields joined: what croniter and a crontab line get."""
        return " ".join(self.fields)

    @property
    def macro(self) -> str | None:
        return self.text if self.text.startswith("@") else None

    @property
    def fixed_time(self) -> bool:
        """Neither minute nor hour starts with ``*``: cron's rule for DST catch-up.

        Vixie/Debian cron (and cronie) run such jobs once when the wall clock repeats an hour,
        and soon after the change when it skips one; jobs with ``*`` in the minute or hour
        field simply follow the new wall time.
        """
        return not (self.fields[0].startswith("*") or self.fields[1].startswith("*"))

    @property
    def day_star(self) -> bool:
        return self.fields[2].startswith("*")

    @property
    def weekday_star(self) -> bool:
        return self.fields[4].startswith("*")


def parse_cron(text: str) -> CronExpr:
    """Check ``text`` the way cron would and expand its fields.

    Raises CronSyntaxError naming the field that is wrong and what cron expects there.
    """
    raw = " ".join(text.split())
    lowered = raw.lower()
    if lowered.startswith("@"):
        if lowered == "@reboot":
            raise CronSyntaxError(
                "schedule '@reboot' has no fire times",
                hint="use a time-based schedule such as '@daily' or '0 2 * * *'",
            )
        if lowered not in MACROS:
            raise CronSyntaxError(
                f"unknown schedule macro {raw!r}",
                hint="use one of " + ", ".join(sorted(MACROS)),
            )
        fields = tuple(MACROS[lowered].split())
        raw = lowered
    else:
        fields = tuple(lowered.split())
        if len(fields) != 5:
            raise CronSyntaxError(
                f"schedule {text!r} has {len(fields)} fields; cron needs 5 "
                "(minute hour day-of-month month day-of-week)",
                hint="for example '0 2 * * *' (02:00 every day) or a macro such as '@hourly'",
            )
    values = [
        _expand(field, name, low, high, names, text)
        for field, (name, low, high, names) in zip(fields, _FIELDS, strict=False)
    ]
    weekdays = frozenset(0 if d == 7 else d for d in values[4])
    return CronExpr(
        text=raw,
        fields=(fields[0], fields[1], fields[2], fields[3], fields[4]),
        minutes=frozenset(values[0]),
        hours=frozenset(values[1]),
        days=frozenset(values[2]),
        months=frozenset(values[3]),
        weekdays=weekdays,
    )


def _expand(
    field: str, name: str, low: int, high: int, names: tuple[str, ...], text: str
) -> set[int]:
    out: set[int] = set()
    for item in field.split(","):
        match = _ITEM.match(item)
        if not match:
            raise _bad(text, name, item, low, high, names)
        body, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise _bad(text, name, item, low, high, names)
        if body == "*":
            start, end = low, high
            if name == "day of week":
                end = 6
        else:
            first, _, last = body.partition("-")
            start = _value(first, low, high, names, text, name, item)
            end = _value(last, low, high, names, text, name, item) if last else start
            if step_text and not last:
                # Vixie cron reads "5/15" as just 5, cronie and croniter as 5-59/15: refuse it.
                raise _bad(text, name, item, low, high, names, why=f"write {first}-{high}/{step}")
            if end < start:
                raise _bad(text, name, item, low, high, names, why="the range runs backwards")
        out.update(range(start, end + 1, step))
    return out


def _value(
    atom: str, low: int, high: int, names: tuple[str, ...], text: str, name: str, item: str
) -> int:
    if atom.isdigit():
        number = int(atom)
    elif atom in names:
        number = names.index(atom) + (1 if name == "month" else 0)
    else:
        raise _bad(text, name, item, low, high, names)
    if not low <= number <= high:
        raise _bad(text, name, item, low, high, names, why=f"{number} is out of range")
    return number


def _bad(
    text: str,
    name: str,
    item: str,
    low: int,
    high: int,
    names: tuple[str, ...],
    why: str = "",
) -> CronSyntaxError:
    allowed = f"{low}-{high}"
    if names:
        allowed += f" or names ({names[0]}, {names[1]}, …)"
    reason = f": {why}" if why else ""
    return CronSyntaxError(
        f"schedule {text!r}: {name} field {item!r} is not valid cron{reason}",
        hint=f"the {name} field takes *, {allowed}, ranges a-b, steps */n or a-b/n, and lists a,b "
        "(cron does not accept L, W, # or ?)",
    )


__all__ = ["DAYS", "MACROS", "MONTHS", "CronExpr", "CronSyntaxError", "parse_cron"]
