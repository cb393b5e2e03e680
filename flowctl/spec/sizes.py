"""Sizes as written in pipelines and options: ``4GiB``, ``256KiB``, ``1.5GB``, ``512`` (bytes).

One grammar for every size in the format (a step's ``resources: {memory: 4GiB}``, the worker
resources of ``--dask-resources``/``--resources``, foreach's ``batch.max_bytes``), as
``spec/durations.py`` is for times. Binary units (KiB, MiB, GiB, TiB: powers of 1024) and
decimal ones (kB, MB, GB, TB: powers of 1000), a bare number meaning bytes; a size is a whole
number of bytes (``1.5KiB`` is 1536, ``0.1B`` is not a size).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*")
UNITS: dict[str, int] = {
    "": 1, "b": 1,
    "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
}
_EXAMPLES = "use e.g. 256KiB, 512MiB, 4GiB, 1.5GB, or a number of bytes"
#: The schema's pattern for a size written as a string (kept in step with ``parse_size``).
SCHEMA_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*([KkMmGgTt][Ii]?[Bb]|[Bb])?\s*$"


def parse_size(value: str | int | float) -> int:
    """Bytes in ``value`` (a size string or a number of bytes).

    Raises ValueError with a user-facing message when it is not a size.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size ({_EXAMPLES})")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value!r} is not a size (it must be a finite, non-negative amount)")
        size = Decimal(value)
    else:
        m = _SIZE.fullmatch(value)
        unit = m.group(2).lower() if m else ""
        if m is None or unit not in UNITS:
            raise ValueError(f"{value!r} is not a size ({_EXAMPLES})")
        size = Decimal(m.group(1)) * UNITS[unit]  # exact: 4.1GB is 4100000000 bytes, not 4099999999.99
    if size != size.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number of bytes")
    return int(size)


def format_size(size: int) -> str:
    """The shortest exact binary form: ``4GiB``, ``1536KiB``, ``100`` (bytes)."""
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


__all__ = ["SCHEMA_PATTERN", "UNITS", "format_size", "parse_size"]
