"""Durations as written in pipelines and options: ``90``, ``500ms``, ``30s``, ``5m``, ``1h30m``, ``1d``.

The one duration grammar (issue 13: ``--wait 10`` failed where ``timeout: 10`` worked). A
duration is a number of seconds alone, or one or more NUMBER UNIT parts (units ``ms``, ``s``,
``m``, ``h``, ``d``). ``PATTERN`` is the same grammar for the JSON Schema (a test keeps the
schema's copy equal to it). Shared by the pipeline format (timeouts, retry delays, alert
thresholds) and by every option that takes a duration: ``run --wait``, ``gc --older-than`` and
``stats --since`` (through ``duration_option``).
"""

from __future__ import annotations

import math
import re

from flowctl.errors import UsageError

_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_UNITS = r"(?:ms|s|m|h|d)"
#: The grammar as a regular expression (ECMA-262 compatible, for the JSON Schema too).
PATTERN = rf"^\s*(?:{_NUMBER}\s*|(?:{_NUMBER}\s*{_UNITS}\s*)+)$"
_FULL = re.compile(PATTERN)
_PART = re.compile(rf"({_NUMBER})\s*(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
EXAMPLES = "90, 500ms, 30s, 5m, 1h30m, 1d; a number alone is seconds"


def is_duration(text: str) -> bool:
    """Whether ``text`` is written as a duration (it may still be too long to be finite)."""
    return _FULL.match(text) is not None


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value`` (a duration string or a number of seconds).

    Raises ValueError with a user-facing message when it is not a duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        if not is_duration(value):
            raise ValueError(f"{value!r} is not a duration (use e.g. {EXAMPLES})")
        parts = _PART.findall(value)
        seconds = sum(float(n) * _UNIT[u] for n, u in parts) if parts else float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a duration (it must be a finite, non-negative time)")
    return seconds


def duration_option(option: str, value: str) -> float:
    """Seconds in the value of a duration option. Raises UsageError naming the option."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def format_duration(seconds: float, *, precise: bool = False) -> str:
    """A short human form: ``850ms``, ``4.2s``, ``3m05s``, ``2h10m``, ``3d4h``.

    ``precise`` keeps three significant digits below a minute (``4.21ms``, ``12.3ms``,
    ``1.234s``), for measurements such as ``flowctl bench``'s.
    """
    if precise and seconds < 60:
        if seconds >= 10:
            return f"{seconds:.2f}s"
        if seconds >= 1:
            return f"{seconds:.3f}s"
        ms = seconds * 1000
        return f"{ms:.2f}ms" if ms < 10 else f"{ms:.1f}ms" if ms < 100 else f"{ms:.0f}ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"


__all__ = ["EXAMPLES", "PATTERN", "duration_option", "format_duration", "is_duration", "parse_duration"]
