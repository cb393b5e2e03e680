"""The chaos grammar: ``--chaos``, a pipeline's ``chaos:`` and ``FLOWCTL_CHAOS`` (issue 17).

``fail=0.1:rc=3,delay=500ms@0.2,hang=0.02,kill=0.05,kill-runner=0.02,max=2,steps=load-*,seed=42``:
comma-separated ``KEY=VALUE`` items. Probabilities are numbers in [0, 1]; ``delay`` takes the
one duration grammar (``spec/durations.py``) before ``@P``; ``max`` caps each fault per step or
item (per run, resumes included, for ``kill-runner``: there is one runner); ``steps`` is a glob
over step ids; ``seed`` an integer (default 0). An unknown key or a bad value is a
``ChaosError`` (a ``ValueError``) with a did-you-mean hint; callers turn it into exit 2.

Owns parsing and the canonical text only: decisions are ``run/chaos.py``'s.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass

from flowctl.spec.durations import EXAMPLES, parse_duration

ENV_VAR = "FLOWCTL_CHAOS"
#: ``FLOWCTL_CHAOS`` set to this (or ``--chaos`` without a value) turns on the pipeline's block.
FROM_PIPELINE = "1"
FAULTS = ("fail", "delay", "hang", "kill", "kill-runner", "kill-worker")
KEYS = (*FAULTS, "max", "steps", "seed")
_EXAMPLE = "fail=0.1,delay=500ms@0.2,kill=0.05,seed=42"


class ChaosError(ValueError):
    """A chaos spec that does not parse: ``message`` and a ``hint`` (did you mean ...)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class ChaosSettings:
    """What to inject and how often. Probabilities 0 mean never."""

    fail: float = 0.0
    fail_rc: int = 1
    delay: float = 0.0
    delay_seconds: float = 0.0
    hang: float = 0.0
    kill: float = 0.0
    kill_runner: float = 0.0
    kill_worker: float = 0.0
    max: int | None = None  # None: no cap
    steps: str = "*"
    seed: int = 0

    def probability(self, fault: str) -> float:
        return float(getattr(self, fault.replace("-", "_")))

    def applies_to(self, step: str) -> bool:
        return fnmatch.fnmatchcase(step, self.steps)

    @property
    def text(self) -> str:
        """The canonical spelling (recorded with the run; parses back to equal settings)."""
        parts: list[str] = []
        for fault in FAULTS:
            p = self.probability(fault)
            if not p:
                continue
            if fault == "fail":
                parts.append(f"fail={p:g}" + (f":rc={self.fail_rc}" if self.fail_rc != 1 else ""))
            elif fault == "delay":
                parts.append(f"delay={self.delay_seconds * 1000:g}ms@{p:g}")
            else:
                parts.append(f"{fault}={p:g}")
        if self.max is not None:
            parts.append(f"max={self.max}")
        if self.steps != "*":
            parts.append(f"steps={self.steps}")
        parts.append(f"seed={self.seed}")
        return ",".join(parts)


def parse_chaos(text: str) -> ChaosSettings:
    """Parse the chaos grammar (see the module docstring). Raises ``ChaosError``."""
    values: dict[str, object] = {}
    seen: set[str] = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        value = value.strip()
        if key not in KEYS:
            from flowctl.spec.schema import suggest

            guess = suggest(key, KEYS)
            raise ChaosError(
                f"unknown key {key!r} in {item!r}",
                (f"did you mean {guess!r}? " if guess else "") + f"keys: {', '.join(KEYS)} (e.g. {_EXAMPLE})",
            )
        if not sep or not value:
            raise ChaosError(f"{key} needs a value ({item!r})", _hint(key))
        if key in seen:
            raise ChaosError(f"{key} is given twice", "give each key once")
        seen.add(key)
        values.update(_value(key, value, item))
    return ChaosSettings(**values)  # type: ignore[arg-type]


def _value(key: str, value: str, item: str) -> dict[str, object]:
    if key == "fail":
        p, _, rest = value.partition(":")
        out: dict[str, object] = {"fail": _probability(key, p, item)}
        if rest:
            name, _, rc = rest.partition("=")
            if name.strip() != "rc" or not rc.strip().lstrip("-").isdigit():
                raise ChaosError(f"{item!r}: after ':' write rc=N (the exit code)", _hint(key))
            code = int(rc)
            if not 1 <= code <= 255:
                raise ChaosError(f"{item!r}: rc must be an exit code from 1 to 255", _hint(key))
            out["fail_rc"] = code
        return out
    if key == "delay":
        dur, at, p = value.partition("@")
        if not at:
            raise ChaosError(f"{item!r}: write delay=DURATION@P", _hint(key))
        try:
            seconds = parse_duration(dur.strip())
        except ValueError as exc:
            raise ChaosError(f"{item!r}: {exc}", _hint(key)) from None
        return {"delay": _probability(key, p, item), "delay_seconds": seconds}
    if key == "max":
        if not value.isdigit() or int(value) < 1:
            raise ChaosError(f"{item!r}: max takes a whole number from 1", _hint(key))
        return {"max": int(value)}
    if key == "seed":
        if not value.lstrip("-").isdigit():
            raise ChaosError(f"{item!r}: seed takes a whole number", _hint(key))
        return {"seed": int(value)}
    if key == "steps":
        return {"steps": value}
    return {key.replace("-", "_"): _probability(key, value, item)}


def _probability(key: str, text: str, item: str) -> float:
    try:
        p = float(text.strip().removesuffix("%")) / (100 if text.strip().endswith("%") else 1)
    except ValueError:
        p = math.nan
    if not 0.0 <= p <= 1.0:  # NaN fails too
        raise ChaosError(f"{item!r}: {text.strip()!r} is not a probability from 0 to 1", _hint(key))
    return p


def _hint(key: str) -> str:
    forms = {
        "fail": "fail=P or fail=P:rc=N, e.g. fail=0.1:rc=3",
        "delay": f"delay=DURATION@P, e.g. delay=500ms@0.2 (durations: {EXAMPLES})",
        "max": "max=N, e.g. max=2",
        "seed": "seed=N, e.g. seed=42",
        "steps": "steps=GLOB, e.g. steps=load-*",
    }
    return forms.get(key, f"{key}=P, a probability from 0 to 1, e.g. {key}=0.05")


__all__ = ["ENV_VAR", "FAULTS", "FROM_PIPELINE", "KEYS", "ChaosError", "ChaosSettings", "parse_chaos"]
