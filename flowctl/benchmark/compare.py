"""``--compare baseline.json``: this benchmark against an earlier ``--export-json``.

For every per-run figure (``figures.FIGURES``) the change is the difference of the two means,
and the *noise band* is twice the larger of the two standard deviations: a change inside the band
is called "~ no change", one outside it a regression or an improvement, by the figure's better
direction. With a single execution on either side there is no spread to judge by, so the band is
the other side's alone. Two floors keep the band from shrinking below what can be measured at
all: 2% of the baseline (criterion's default noise threshold) and the figure's resolution (1 ms
for times: two runs whose queue waits are 30 µs and 40 µs with no spread did not change in any
sense a user can act on). The comparison also notes what differs between the two runs of the
benchmark (pipeline, parameters, parallelism, machine), since such numbers only compare with
care. Pure, apart from ``load_baseline`` reading and validating the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from flowctl.benchmark.figures import FIGURES, Figure, Summary
from flowctl.errors import UsageError

NO_CHANGE = "no change"
REGRESSION = "regression"
IMPROVEMENT = "improvement"
UNKNOWN = "n/a"
MIXED = "mixed"

#: The band is this many standard deviations wide ...
NOISE_SDS = 2.0
#: ... and never narrower than this fraction of the baseline (nor than the figure's resolution).
NOISE_FLOOR = 0.02


@dataclass(frozen=True, slots=True)
class Baseline:
    """What a comparison needs from an earlier export."""

    path: str
    pipeline: str
    started_at: str
    runs: int
    settings: Mapping[str, object]  # runs, parallel, concurrency, params (as exported)
    environment: Mapping[str, object]
    per_run: Mapping[str, Summary]
    subjects: Mapping[str, float | None]


@dataclass(frozen=True, slots=True)
class Delta:
    figure: Figure
    baseline: Summary
    current: Summary
    band: float | None  # None when either mean is missing
    verdict: str

    @property
    def change(self) -> float | None:
        if self.baseline.mean is None or self.current.mean is None:
            return None
        return self.current.mean - self.baseline.mean

    @property
    def ratio(self) -> float | None:
        """Current over baseline mean (None for a zero or missing baseline)."""
        if self.baseline.mean in (None, 0) or self.current.mean is None:
            return None
        return self.current.mean / self.baseline.mean

    def to_dict(self) -> dict[str, object]:
        return {
            "figure": self.figure.key,
            "label": self.figure.label,
            "better": self.figure.better,
            "baseline": {"mean": self.baseline.mean, "sd": self.baseline.sd},
            "current": {"mean": self.current.mean, "sd": self.current.sd},
            "change": self.change,
            "ratio": self.ratio,
            "band": self.band,
            "verdict": self.verdict,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    baseline: Baseline
    deltas: tuple[Delta, ...]
    notes: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        """``regression``, ``improvement``, ``mixed`` (both) or ``no change``."""
        seen = {d.verdict for d in self.deltas}
        if REGRESSION in seen and IMPROVEMENT in seen:
            return MIXED
        if REGRESSION in seen:
            return REGRESSION
        if IMPROVEMENT in seen:
            return IMPROVEMENT
        return NO_CHANGE

    def to_dict(self) -> dict[str, object]:
        b = self.baseline
        return {
            "baseline": {"file": b.path, "pipeline": b.pipeline, "started_at": b.started_at, "runs": b.runs},
            "verdict": self.verdict,
            "noise_band_sd": NOISE_SDS,
            "noise_floor": NOISE_FLOOR,
            "deltas": [d.to_dict() for d in self.deltas],
            "notes": list(self.notes),
        }


def judge(figure: Figure, baseline: Summary, current: Summary) -> Delta:
    """One figure's change and its verdict (see the module docstring)."""
    if baseline.mean is None or current.mean is None:
        return Delta(figure, baseline, current, None, UNKNOWN)
    spreads = [sd for sd in (baseline.sd, current.sd) if sd is not None]
    band = max(NOISE_SDS * max(spreads, default=0.0), NOISE_FLOOR * abs(baseline.mean), figure.resolution)
    change = current.mean - baseline.mean
    if abs(change) <= band:
        verdict = NO_CHANGE
    elif (change > 0) == (figure.better == "lower"):
        verdict = REGRESSION
    else:
        verdict = IMPROVEMENT
    return Delta(figure, baseline, current, band, verdict)


def compare(
    baseline: Baseline,
    per_run: Mapping[str, Summary],
    *,
    pipeline: str,
    settings: Mapping[str, object],
    environment: Mapping[str, object],
) -> Comparison:
    """Every figure of ``per_run`` (this benchmark's ``Aggregate.per_run``) against the baseline."""
    deltas = tuple(judge(f, baseline.per_run.get(f.key, Summary()), per_run.get(f.key, Summary())) for f in FIGURES)
    return Comparison(baseline, deltas, _notes(baseline, pipeline, settings, environment))


def _notes(
    baseline: Baseline, pipeline: str, settings: Mapping[str, object], environment: Mapping[str, object]
) -> tuple[str, ...]:
    notes: list[str] = []
    if baseline.pipeline != pipeline:
        notes.append(f"the baseline benchmarked pipeline {baseline.pipeline!r}, this one {pipeline!r}")
    for key, what in (("params", "parameters differ"), ("parallel", "--parallel differs"), ("concurrency", "-j differs")):
        if baseline.settings.get(key) != settings.get(key):
            notes.append(f"{what}: {_shown(baseline.settings.get(key))} then, {_shown(settings.get(key))} now")
    for key in ("cpus", "python", "flowctl", "executor", "platform"):
        if baseline.environment.get(key) != environment.get(key):
            notes.append(f"{key} differs: {baseline.environment.get(key)} then, {environment.get(key)} now")
    return tuple(notes)


def _shown(value: object) -> str:
    if isinstance(value, Mapping):
        return " ".join(f"{k}={v}" for k, v in sorted(value.items())) or "none"
    return str(value)


def load_baseline(path: str) -> Baseline:
    """Read an ``--export-json`` file and check it against the shipped schema.

    Raises ``UsageError`` for a missing, unreadable or invalid file, saying what is wrong.
    """
    from flowctl.benchmark.document import schema_errors

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise UsageError(f"--compare {path}: no such file", hint="write one with --export-json FILE") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"--compare {path}: cannot read it as JSON: {exc}") from None
    problems = schema_errors(data)
    if problems:
        raise UsageError(
            f"--compare {path}: not a flowctl bench export: {problems[0]}",
            hint="give a file written by flowctl bench --export-json",
        )
    aggregate = data["aggregate"]
    per_run = {
        key: Summary(
            count=int(v["count"]), mean=v["mean"], sd=v["sd"], median=v["median"], min=v["min"], max=v["max"]
        )
        for key, v in aggregate["per_run"].items()
    }
    settings = data["settings"]
    return Baseline(
        path=os.fspath(path),
        pipeline=str(data["pipeline"]["name"]),
        started_at=str(data["environment"]["started_at"]),
        runs=int(aggregate["runs"]),
        settings=MappingProxyType({k: settings.get(k) for k in ("runs", "parallel", "concurrency", "params")}),
        environment=MappingProxyType(dict(data["environment"])),
        per_run=MappingProxyType(per_run),
        subjects=MappingProxyType(dict(aggregate["subjects"])),
    )


__all__ = [
    "IMPROVEMENT",
    "MIXED",
    "NOISE_FLOOR",
    "NOISE_SDS",
    "NO_CHANGE",
    "REGRESSION",
    "UNKNOWN",
    "Baseline",
    "Comparison",
    "Delta",
    "compare",
    "judge",
    "load_baseline",
]
