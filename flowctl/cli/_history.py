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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import typer

from flowctl.cli._common import no_color, stdout_is_tty

STATE_DIR_HELP = (
    "The state folder (default: $FLOWCTL_STATE_DIR, else the project's: the nearest .flowctl/ "
    "up from here or from the pipeline file, else .flowctl/ at the top of the git work tree)."
)
RUN_ID_HELP = "A run id, a unique prefix of one, latest (the newest run) or latest~N (the N-th before it)."


def state_dir_option() -> Any:
    return typer.Option(None, "--state-dir", metavar="DIR", help=STATE_DIR_HELP)


def pipeline_option() -> Any:
    return typer.Option(
        None, "--pipeline", metavar="FILE", help="latest means the newest run of this pipeline (a file or a name)."
    )


def next_commands(run_id: str, state_dir: str, failed_step: str | None) -> list[str]:
    """The commands to type after a run: ``show`` it and read a log (the root failure's, or the
    list of its steps' logs), with ``--state-dir`` when the working folder would find another."""
    import os
    import shlex

    from flowctl.errors import FlowctlError
    from flowctl.state.views import state_dir_for

    tail: list[str] = []
    try:
        here = os.path.abspath(state_dir_for(None, None))
    except FlowctlError:  # a file where the state folder would be: say where it is
        here = ""
    if here != os.path.abspath(state_dir):
        tail = ["--state-dir", state_dir]
    show = shlex.join(["flowctl", "show", run_id, *tail])
    logs = shlex.join(["flowctl", "logs", run_id, *([failed_step] if failed_step else []), *tail])
    return [f"Details: {show}", f"{'Failure log' if failed_step else 'Step logs'}: {logs}"]


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
    head = "  ".join(cell.ljust(w) for cell, w in zip(headers, widths, strict=False)).rstrip()
    if stdout_is_tty() and not no_color():
        head = f"\x1b[1m{head}\x1b[0m"
    out.write(head + "\n")
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip() + "\n")


def emit_json(value: Any) -> None:
    """``value`` as JSON on stdout: ``json.dumps(to_jsonable(value), indent=2, default=str)``."""
    write_json(value, sys.stdout.write)
    sys.stdout.write("\n")


_SCALARS = frozenset({str, int, float, bool, type(None)})
_PLAIN, _MAPPING, _SEQUENCE, _RECORD = range(4)


def write_json(value: Any, write: Callable[[str], object]) -> None:
    """``json.dumps(to_jsonable(value), indent=2, default=str)``, written out in pieces.

    Python indents JSON a generator step per token, after a pass that copies every record
    into dicts: for the 100,000-step run of ``show --json`` that cost three times reading the
    run (issue 12). Here records are read as they are, and every run of plain values (strings,
    numbers, ...) in a container is encoded by the C encoder, whose item separator carries the
    newline and the indentation of its depth: a step's record is a few C calls, the text the same.
    """
    import operator
    from json import encoder as std

    encoders: dict[int, Callable[[Any], str]] = {}
    kinds: dict[type, int] = {}
    plain_types = set(_SCALARS)  # asked first: most values are these
    fields_of: dict[type, tuple[tuple[str, ...], Callable[[Any], Any]]] = {}
    buffer: list[str] = []
    key_text = std.encode_basestring_ascii

    def flat(depth: int) -> Callable[[Any], str]:
        found = encoders.get(depth)
        if found is None:
            separators = (",\n" + "  " * depth, ": ")
            c_encoder = getattr(std, "c_make_encoder", None)
            if c_encoder is None:  # no C accelerator: the same text, slower
                found = json.JSONEncoder(separators=separators, default=str).encode
            else:  # made once per depth: JSONEncoder.encode makes one per call
                make = c_encoder(None, str, key_text, None, separators[1], separators[0], False, False, True)

                def joined(item: Any, make: Any = make) -> str:
                    return "".join(make(item, 0))

                found = joined
            encoders[depth] = found
        return found

    def kind_of(item: Any) -> int:
        cls = type(item)
        found = kinds.get(cls)
        if found is None:
            if cls in _SCALARS:
                found = _PLAIN
            elif dataclasses.is_dataclass(item) and not isinstance(item, type):
                found = _RECORD
                names = tuple(f.name for f in dataclasses.fields(item) if not f.name.startswith("_"))
                read = operator.attrgetter(*names) if len(names) > 1 else (lambda x: (getattr(x, names[0]),))
                fields_of[cls] = (names, read if names else (lambda x: ()))
            elif isinstance(item, Mapping):
                found = _MAPPING
            elif isinstance(item, (list, tuple)):
                found = _SEQUENCE
            else:
                found = _PLAIN  # the encoder's default=str writes it
            kinds[cls] = found
            if found == _PLAIN:
                plain_types.add(cls)
        return found

    def emit(item: Any, depth: int) -> None:
        kind = kind_of(item)
        if kind == _PLAIN:
            buffer.append(flat(depth)(item))
            return
        if kind == _RECORD:
            names, read = fields_of[type(item)]
            item = dict(zip(names, read(item), strict=False))
        elif kind == _MAPPING and (type(item) is not dict or not all(type(k) is str for k in item)):
            item = {str(k): v for k, v in item.items()}  # a plain dict, keys named as to_jsonable does
        if not item:
            buffer.append("[]" if kind == _SEQUENCE else "{}")
            return
        opening, closing = ("[", "]") if kind == _SEQUENCE else ("{", "}")
        values = item if kind == _SEQUENCE else item.values()
        nested = [type(v) not in plain_types and kind_of(v) != _PLAIN for v in values]
        inner = "\n" + "  " * (depth + 1)
        encode = flat(depth + 1)
        if not any(nested):  # plain values only (an attempt's record): one C call
            plain = list(item) if kind == _SEQUENCE else item
            buffer.append(opening + inner + encode(plain)[1:-1])
        else:
            pairs = list(enumerate(item)) if kind == _SEQUENCE else list(item.items())
            buffer.append(opening)
            i, count = 0, len(pairs)
            while i < count:
                if i:
                    buffer.append(",")
                j = i
                while j < count and not nested[j]:
                    j += 1
                if j > i:  # a run of plain values: one C call, brackets cut off
                    run = [v for _, v in pairs[i:j]] if kind == _SEQUENCE else dict(pairs[i:j])
                    buffer.append(inner + encode(run)[1:-1])
                    i = j
                    continue
                key, sub = pairs[i]
                buffer.append(inner if kind == _SEQUENCE else f"{inner}{key_text(str(key))}: ")
                emit(sub, depth + 1)
                i += 1
        buffer.append("\n" + "  " * depth + closing)
        if len(buffer) > 4096:
            write("".join(buffer))
            buffer.clear()

    emit(value, 0)
    write("".join(buffer))


def to_jsonable(value: Any) -> Any:
    """Dataclasses (their public fields), mappings and sequences as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if not f.name.startswith("_")
        }
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


__all__ = [
    "RUN_ID_HELP",
    "counts_text",
    "emit_json",
    "format_option",
    "next_commands",
    "pipeline_option",
    "seconds",
    "stamp",
    "state_dir_option",
    "table",
    "to_jsonable",
]
