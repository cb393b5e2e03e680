"""Rendering shared by the history commands (runs, show, gc, doctor): times, durations, tables,
JSON. Tables are aligned plain columns everywhere (readable at 80 columns, greppable), with a
bold header on a terminal.

Import-light: typer and the standard library only.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import typer

from flowctl.cli._common import no_color, stdout_is_tty

STATE_DIR_HELP = "The state folder (default: $FLOWCTL_STATE_DIR, else .flowctl/ beside the pipeline or here)."


def state_dir_option() -> Any:
    return typer.Option(None, "--state-dir", metavar="DIR", help=STATE_DIR_HELP)


def format_option() -> Any:
    return typer.Option("text", "--format", "-f", help="text or json.")


def stamp(epoch: float | None) -> str:
    """ISO-8601 UTC to the second, or ``-``."""
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def seconds(value: float | None) -> str:
    from flowctl.spec.durations import format_duration

    return "-" if value is None else format_duration(max(0.0, value))


def counts_text(counts: Mapping[str, int]) -> str:
    order = ("succeeded", "reused", "up to date", "failed (allowed)", "failed", "skipped", "cancelled",
             "interrupted", "running", "ready", "pending")
    keys = [k for k in order if counts.get(k)] + sorted(k for k in counts if k not in order and counts[k])
    return ", ".join(f"{counts[k]} {k}" for k in keys) or "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, title: str | None = None) -> None:
    """Print rows as aligned columns (one line per row, so it greps and pipes well); on a
    terminal the header is bold unless NO_COLOR is set."""
    out = sys.stdout
    if title:
        out.write(title + "\n")
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    head = "  ".join(cell.ljust(w) for cell, w in zip(headers, widths)).rstrip()
    if stdout_is_tty() and not no_color():
        head = f"\x1b[1m{head}\x1b[0m"
    out.write(head + "\n")
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n")


def emit_json(value: Any) -> None:
    """``value`` as indented JSON on stdout, written in batches of chunks (a 100,000-step
    ``show --json`` is 14 million chunks: one write each cost more than the encoding, and
    joining them all at once held them all in memory; issue 12)."""
    import itertools

    chunks = json.JSONEncoder(indent=2, default=str).iterencode(to_jsonable(value))
    write = sys.stdout.write
    while batch := "".join(itertools.islice(chunks, 8192)):
        write(batch)
    write("\n")


_SCALARS = frozenset({str, int, float, bool, type(None)})


def to_jsonable(value: Any) -> Any:
    """Dataclasses (their public fields), mappings and sequences as plain JSON values.

    Each dataclass type's field names are looked up once per call, not once per record (a
    100,000-step run holds 200,000 records of two types; issue 12)."""
    names_of: dict[type, tuple[str, ...]] = {}

    def convert(item: Any) -> Any:
        kind = type(item)
        if kind in _SCALARS:
            return item
        names = names_of.get(kind)
        if names is None and dataclasses.is_dataclass(item) and not isinstance(item, type):
            names = names_of[kind] = tuple(f.name for f in dataclasses.fields(item) if not f.name.startswith("_"))
        if names is not None:
            return {name: convert(getattr(item, name)) for name in names}
        if kind is dict or isinstance(item, Mapping):
            return {str(k): convert(v) for k, v in item.items()}
        if kind is list or kind is tuple or isinstance(item, (list, tuple)):
            return [convert(v) for v in item]
        return item

    return convert(value)


__all__ = ["counts_text", "emit_json", "format_option", "seconds", "stamp", "state_dir_option", "table", "to_jsonable"]
