"""A producing step's standard output as items (issue 15: ``items_from: {step: S}``).

A step some ``foreach`` reads from gets its stdout apart from its log (``AttemptSpec.stdout_path``):
the executor copies it, as is, into ``<run folder>/<S>/stdout.jsonl`` (``STDOUT``), where a
resumed run finds it again. This module reads that file: whole, once the producer succeeded
(``run/foreach.read_items``), or as it grows, while the producer still runs (``LineTail``, for
``stream: true``). Each line is one JSON value (``parse_line``); a line that is not JSON is the
producer's fault (``OutputFault``), unlike an item that cannot run (``ItemFault``), which is the
consuming step's. Scheduling is ``run/streamrun.py``'s; the items themselves ``run/foreach.py``'s.
"""

from __future__ import annotations

import json
import os

from flowctl.spec.foreach import ItemFault

STDOUT = "stdout.jsonl"


class OutputFault(ItemFault):
    """A line of a producer's output that is not one JSON value: the producer's step fails."""


def output_name(step: str) -> str:
    """How messages name a producer's output."""
    return f"the output of step {step}"


def parse_line(name: str, number: int, text: str) -> object:
    """Line ``number`` (1-based) of ``name`` as one JSON value. Raises OutputFault."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise OutputFault(f"{name}, line {number}: not JSON ({exc.args[0]})", number - 1) from None


class LineTail:
    """The complete lines of a file that grows, numbered from 1, each read once: ``read`` returns
    those written since the last call (with ``final``, the unfinished last line too). A file
    not made yet has no lines."""

    __slots__ = ("number", "offset", "partial", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self.number = 0
        self.partial = b""

    def read(self, *, final: bool = False) -> list[tuple[int, str]]:
        """New ``(number, text)`` lines. Raises OutputFault for a line that is not UTF-8."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise OutputFault(f"{output_name(os.path.basename(os.path.dirname(self.path)))}: cannot read "
                              f"{self.path}: {exc.strerror or exc}", self.number) from None
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        if final and self.partial:
            lines.append(self.partial)
            self.partial = b""
        out: list[tuple[int, str]] = []
        for raw in lines:
            self.number += 1
            try:
                out.append((self.number, raw.decode("utf-8").rstrip("\r")))
            except UnicodeDecodeError:
                step = os.path.basename(os.path.dirname(self.path))
                raise OutputFault(f"{output_name(step)}, line {self.number}: not UTF-8", self.number - 1) from None
        return out


__all__ = ["STDOUT", "LineTail", "OutputFault", "output_name", "parse_line"]
