"""Rendering shared by the history commands (runs, show, gc, doctor): times, durations, tables,
JSON. A rich table on a terminal, aligned plain text otherwise (cron, CI, pipes).

Import-light: typer and the standard library at the top; rich inside functions.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import typer

from flowctl.cli._common import console, stdout_is_tty

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
    """Print rows: a rich table on a terminal, aligned columns otherwise."""
    if stdout_is_tty():
        from rich.table import Table

        grid = Table(title=title, title_justify="left")
        for header in headers:
            grid.add_column(header)
        for row in rows:
            grid.add_row(*row)
        console().print(grid)
        return
    out = sys.stdout
    if title:
        out.write(title + "\n")
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    for line in [list(headers), *rows]:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() + "\n")


def emit_json(value: Any) -> None:
    json.dump(to_jsonable(value), sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if not f.name.startswith("_")
        }
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


__all__ = ["counts_text", "emit_json", "format_option", "seconds", "stamp", "state_dir_option", "table", "to_jsonable"]
