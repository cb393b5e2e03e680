"""Durations as written in pipelines and options: ``500ms``, ``30s``, ``5m``, ``1h30m``, ``1d``.

Shared by the pipeline format (timeouts, retry delays), and by options such as ``--wait``,
``gc --older-than`` and ``stats --since``.
"""

from __future__ import annotations

import math
import re

_PART = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)\s*")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value`` (a duration string or a number of seconds).

    Raises ValueError with a user-facing message when it is not a duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = value.strip()
        pos, seconds, matched = 0, 0.0, False
        while pos < len(text):
            m = _PART.match(text, pos)
            if m is None or m.end() == pos:
                raise ValueError(f"{value!r} is not a duration (use e.g. 500ms, 30s, 5m, 1h30m, 1d)")
            seconds += float(m.group(1)) * _UNIT[m.group(2)]
            pos, matched = m.end(), True
        if not matched:
            raise ValueError(f"{value!r} is not a duration (use e.g. 500ms, 30s, 5m, 1h30m, 1d)")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a duration (it must be a finite, non-negative time)")
    return seconds


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
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"


__all__ = ["format_duration", "parse_duration"]
