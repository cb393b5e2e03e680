"""Resources: what a step's attempt holds while it runs, against what there is.

A step's ``resources`` (``{gpu: 1, memory: 4GiB}``, sizes in bytes) mean two things, one per
executor: under ``--executor dask`` they are Dask worker resources and Dask places the attempt
(``executors/dask.py`` passes them on); under the local executor they are counting limits, as
Snakemake's ``--resources`` are: ``ResourcePool`` admits an attempt only while what the running
ones hold plus what it wants stays within ``--resources`` (a name not limited is unlimited).
Also here: reading ``NAME=AMOUNT`` lists (``--resources``, ``--dask-resources``) and finding
the steps that could never start (``unsatisfiable``), so a run fails before it starts instead of
waiting for ever. Amounts are floats; sizes go through ``spec/sizes.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from flowctl.errors import UsageError
from flowctl.spec.model import Step
from flowctl.spec.sizes import format_size, parse_size

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SLACK = 1e-9  # float sums of fractional amounts (0.1 + 0.2) must not refuse an exact fit


def parse_resource_list(values: Sequence[str], option: str) -> dict[str, float]:
    """``["gpu=2,memory=16GiB", "licenses=1"]`` → amounts (sizes in bytes).

    Raises UsageError naming ``option`` for anything that is not ``NAME=AMOUNT``.
    """
    out: dict[str, float] = {}
    for value in values:
        for item in value.split(","):
            name, sep, amount = item.strip().partition("=")
            name = name.strip()
            if not sep or not _NAME.match(name):
                raise UsageError(
                    f"{option} {item.strip()!r}: expected NAME=AMOUNT",
                    hint=f"e.g. {option} gpu=1,memory=16GiB (names: letters, digits and '_')",
                )
            out[name] = parse_amount(amount, f"{option} {name}")
    return out


def parse_amount(text: str, where: str) -> float:
    """An amount (``1``, ``0.5``) or a size (``4GiB``) as a float; UsageError naming ``where``."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            return float(parse_size(text))
        except ValueError as exc:
            raise UsageError(f"{where}: {exc}", hint="give a number (gpu=1) or a size (memory=16GiB)") from exc
    if not number >= 0 or number == float("inf"):
        raise UsageError(f"{where}: {text!r} is not a non-negative amount")
    return number


def describe(amounts: Mapping[str, float]) -> str:
    """``gpu=1, memory=4GiB`` (sizes of at least 1 KiB shown in binary units)."""
    return ", ".join(f"{name}={show_amount(name, value)}" for name, value in sorted(amounts.items()))


def show_amount(name: str, value: float) -> str:
    if value >= 1024 and value == int(value) and format_size(int(value)) != str(int(value)):
        return format_size(int(value))
    return f"{value:g}"


def unsatisfiable(
    steps: Iterable[Step], offers: Sequence[Mapping[str, float]], *, unnamed_unlimited: bool = False
) -> list[tuple[Step, str]]:
    """Steps whose ``resources`` no single offer covers, with what is missing in words.

    ``offers``: what each worker has (Dask: every connected worker), or for the local executor
    the one ``--resources`` set with ``unnamed_unlimited`` (a resource it does not name is
    unlimited, see ``ResourcePool``).
    """
    out: list[tuple[Step, str]] = []
    for step in steps:
        wanted = step.resources
        if unnamed_unlimited and offers:
            wanted = {n: a for n, a in wanted.items() if n in offers[0]}
        if not wanted or any(_covers(offer, wanted) for offer in offers):
            continue
        best = max(offers, key=lambda o: sum(_covers(o, {n: a}) for n, a in wanted.items()), default={})
        out.append((step, describe({n: a for n, a in wanted.items() if not _covers(best, {n: a})})))
    return out


def _covers(offer: Mapping[str, float], wanted: Mapping[str, float]) -> bool:
    return all(offer.get(name, 0.0) + _SLACK >= amount for name, amount in wanted.items())


def refuse(problems: Sequence[tuple[Step, str]], having: str, hint: str) -> None:
    """Raise one UsageError (exit 2) naming every step that could never start, if any."""
    if problems:
        raise UsageError(
            "; ".join(f"{f'{s.span}: ' if s.span else ''}step {s.id!r} needs {need}, which {having}"
                      for s, need in problems),
            hint=hint,
        )


class ResourcePool:
    """Counting limits for the local executor: ``fits``, ``take`` and ``give`` back."""

    __slots__ = ("_limits", "_used")

    def __init__(self, limits: Mapping[str, float]) -> None:
        self._limits = dict(limits)
        self._used = dict.fromkeys(self._limits, 0.0)

    def fits(self, wanted: Mapping[str, float]) -> bool:
        limits, used = self._limits, self._used
        return all(used[n] + a <= limits[n] + _SLACK for n, a in wanted.items() if n in limits)

    def take(self, wanted: Mapping[str, float]) -> None:
        for n, a in wanted.items():
            if n in self._used:
                self._used[n] += a

    def give(self, wanted: Mapping[str, float]) -> None:
        for n, a in wanted.items():
            if n in self._used:
                self._used[n] = max(0.0, self._used[n] - a)


def check_local(steps: Iterable[Step], limits: Mapping[str, float]) -> None:
    """Raise UsageError when a step wants more of a limited resource than ``--resources`` gives."""
    if limits:
        refuse(unsatisfiable(steps, [limits], unnamed_unlimited=True), "is more than --resources gives",
               f"--resources gives {describe(limits)}: raise the limit, or lower the step's `resources:`")


__all__ = [
    "ResourcePool", "check_local", "describe", "parse_amount", "parse_resource_list", "refuse", "show_amount",
    "unsatisfiable",
]
