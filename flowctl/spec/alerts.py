"""The alert grammar: a ``when:`` expression parsed into a frozen ``AlertRule``.

Grammar (whitespace between tokens is free)::

    when     := "failed" | SUBJECT OP VALUE
    SUBJECT  := "error_rate" | "step_error_rate" | "duration" | "queue_wait_p99"
              | "step_latency_p99" | "dead_letter"
              | "step." STEP_ID ".duration" | "step." STEP_ID ".attempts"
    OP       := ">" | ">=" | "<" | "<="
    VALUE    := NUMBER | NUMBER "%" | DURATION | NUMBER "x baseline"
    DURATION := spec/durations.py's grammar (e.g. 90s, 10m, 1h30m; a number alone is seconds)

Rates (``error_rate``, ``step_error_rate``) take a fraction (0.05) or a percentage (5%);
time subjects take a duration or a number of seconds; ``attempts`` and ``dead_letter`` (items
of foreach steps in the run's dead-letter queue, issue 15) take a whole number. Every
subject takes ``Nx baseline``: N times the median of that subject over the last 10 successful
runs (no baseline yet: the alert cannot fire). This module only parses; ``observe.alerts``
evaluates.

The same grammar states ``flowctl bench --threshold``s (issue 17): ``parse_alert(text,
vocabulary=THRESHOLDS)`` accepts the alert subjects (except ``failed``) plus the figures only a
benchmark has (``p50``/``p95``/``p99`` = step latency, ``queue_depth_max``, ``throughput``, …,
with the dotted spellings ``step.p99`` and ``queue_wait.p99``); ``benchmark.thresholds``
evaluates them. Pipeline ``alerts:`` never accept the benchmark-only subjects. ``parse_alert`` raises ``AlertSyntaxError`` (a ``ValueError``) whose ``column`` is
the 1-based position of the problem inside the expression (and ``length`` its width), so the
validator can point at it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from flowctl.spec.durations import parse_duration
from flowctl.spec.schema import suggest


class AlertSyntaxError(ValueError):
    """An invalid ``when:`` expression; ``column`` is 1-based within the expression."""

    def __init__(self, message: str, column: int = 1, hint: str | None = None, length: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.hint = hint
        self.length = length  # characters the problem spans (0: to the end)


class Subject(enum.Enum):
    FAILED = "failed"
    ERROR_RATE = "error_rate"
    STEP_ERROR_RATE = "step_error_rate"
    DURATION = "duration"
    QUEUE_WAIT_P99 = "queue_wait_p99"
    STEP_LATENCY_P99 = "step_latency_p99"
    STEP_DURATION = "step.duration"
    STEP_ATTEMPTS = "step.attempts"
    DEAD_LETTER = "dead_letter"  # items of the run's foreach steps in its dead-letter queue (issue 15)
    # Only ``flowctl bench --threshold`` knows these (see ``THRESHOLDS``).
    STEP_LATENCY_P50 = "step_latency_p50"
    STEP_LATENCY_P95 = "step_latency_p95"
    QUEUE_WAIT_P50 = "queue_wait_p50"
    QUEUE_DEPTH_MAX = "queue_depth_max"
    QUEUE_DEPTH_MEAN = "queue_depth_mean"
    THROUGHPUT = "throughput"
    RETRIES = "retries"
    WALL_MEDIAN = "wall_median"
    WALL_MIN = "wall_min"
    WALL_MAX = "wall_max"
    OVERHEAD = "overhead"

    @property
    def kind(self) -> str:
        """``rate``, ``time``, ``count`` or ``flag``: which values it accepts."""
        return _KINDS[self]


_KINDS = {
    Subject.FAILED: "flag",
    Subject.ERROR_RATE: "rate",
    Subject.STEP_ERROR_RATE: "rate",
    Subject.DURATION: "time",
    Subject.QUEUE_WAIT_P99: "time",
    Subject.STEP_LATENCY_P99: "time",
    Subject.STEP_DURATION: "time",
    Subject.STEP_ATTEMPTS: "count",
    Subject.DEAD_LETTER: "count",
    Subject.STEP_LATENCY_P50: "time",
    Subject.STEP_LATENCY_P95: "time",
    Subject.QUEUE_WAIT_P50: "time",
    Subject.QUEUE_DEPTH_MAX: "count",
    Subject.QUEUE_DEPTH_MEAN: "number",
    Subject.THROUGHPUT: "number",
    Subject.RETRIES: "count",
    Subject.WALL_MEDIAN: "time",
    Subject.WALL_MIN: "time",
    Subject.WALL_MAX: "time",
    Subject.OVERHEAD: "time",
}

_ALERT_RUN = (
    Subject.ERROR_RATE, Subject.STEP_ERROR_RATE, Subject.DURATION, Subject.QUEUE_WAIT_P99, Subject.STEP_LATENCY_P99,
)
_RUN_SUBJECTS = {s.value: s for s in _ALERT_RUN}
_STEP_FIELDS = {"duration": Subject.STEP_DURATION, "attempts": Subject.STEP_ATTEMPTS}
_STEP_NAMES = ("step.<id>.duration", "step.<id>.attempts")
_ALERT_ONLY = {Subject.DEAD_LETTER.value: Subject.DEAD_LETTER}  # no benchmark has a dead-letter queue
SUBJECT_NAMES = (*_RUN_SUBJECTS, *_ALERT_ONLY, *_STEP_NAMES)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The subjects one use of the grammar accepts: pipeline alerts, or benchmark thresholds."""

    noun: str  # "alert" or "threshold", as messages say it
    subjects: Mapping[str, Subject]  # run-level names, aliases included
    shown: tuple[str, ...]  # the names hints list (no aliases)
    example: str
    allow_failed: bool = False


ALERTS = Vocabulary("alert", {**_RUN_SUBJECTS, **_ALERT_ONLY}, SUBJECT_NAMES, "error_rate > 5%", allow_failed=True)

_BENCH_NAMES: dict[str, Subject] = {
    "p50": Subject.STEP_LATENCY_P50,
    "p95": Subject.STEP_LATENCY_P95,
    "p99": Subject.STEP_LATENCY_P99,
    **_RUN_SUBJECTS,
    "queue_wait_p50": Subject.QUEUE_WAIT_P50,
    "queue_depth_max": Subject.QUEUE_DEPTH_MAX,
    "queue_depth_mean": Subject.QUEUE_DEPTH_MEAN,
    "throughput": Subject.THROUGHPUT,
    "retries": Subject.RETRIES,
    "wall_median": Subject.WALL_MEDIAN,
    "wall_min": Subject.WALL_MIN,
    "wall_max": Subject.WALL_MAX,
    "overhead": Subject.OVERHEAD,
}
# The spellings of the issue and of the report's labels: ``step.p99 < 2s``, ``queue_wait.p99``.
_BENCH_ALIASES: dict[str, Subject] = {
    "step_latency_p50": Subject.STEP_LATENCY_P50,
    "step_latency_p95": Subject.STEP_LATENCY_P95,
    "step.p50": Subject.STEP_LATENCY_P50,
    "step.p95": Subject.STEP_LATENCY_P95,
    "step.p99": Subject.STEP_LATENCY_P99,
    "queue_wait.p50": Subject.QUEUE_WAIT_P50,
    "queue_wait.p99": Subject.QUEUE_WAIT_P99,
    "queue_depth.max": Subject.QUEUE_DEPTH_MAX,
    "queue_depth.mean": Subject.QUEUE_DEPTH_MEAN,
    "wall_mean": Subject.DURATION,
    "wall.mean": Subject.DURATION,
    "wall.median": Subject.WALL_MEDIAN,
    "wall.min": Subject.WALL_MIN,
    "wall.max": Subject.WALL_MAX,
}
THRESHOLDS = Vocabulary(
    "threshold",
    {**_BENCH_NAMES, **_BENCH_ALIASES},
    (*(n for n in _BENCH_NAMES if n != "step_latency_p99"), *_STEP_NAMES),
    "p99 < 2s",
)


class Op(enum.Enum):
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="

    def holds(self, left: float, right: float) -> bool:
        if self is Op.GT:
            return left > right
        if self is Op.GE:
            return left >= right
        if self is Op.LT:
            return left < right
        return left <= right


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A parsed ``when:``. ``threshold`` is in base units (fraction, seconds, count) unless
    ``baseline_factor`` is set, in which case the threshold is that factor times the baseline."""

    text: str
    subject: Subject
    step: str | None = None  # for step.<id>.* subjects
    op: Op | None = None  # None only for ``failed``
    threshold: float | None = None
    baseline_factor: float | None = None

    def holds(self, value: float, baseline: float | None = None) -> tuple[bool, float] | None:
        """Whether ``value OP limit`` holds, and the limit: the threshold, or the factor times
        ``baseline`` for an ``Nx baseline`` rule (None when such a rule has no baseline). An
        alert fires when its rule holds; a benchmark threshold passes when it does."""
        assert self.op is not None  # not for ``failed``
        if self.baseline_factor is not None:
            if baseline is None:
                return None
            limit = self.baseline_factor * baseline
        else:
            assert self.threshold is not None
            limit = self.threshold
        return self.op.holds(value, limit), limit

    @property
    def key(self) -> str:
        """The subject as written (``step.load.duration``), used to look values up."""
        if self.step is not None:
            return f"step.{self.step}.{self.subject.value.split('.', 1)[1]}"
        return self.subject.value


_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_STEP_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_OP = re.compile(r">=|<=|>|<|==|!=|=")


def _subject(text: str, steps: Collection[str] | None, words: Vocabulary) -> tuple[Subject, str | None]:
    if text in words.subjects:
        return words.subjects[text], None
    if text.startswith("step."):
        rest = text[len("step.") :]
        step, dot, field_name = rest.rpartition(".")
        if not dot or not step or field_name not in _STEP_FIELDS or not _STEP_ID.fullmatch(step):
            close = suggest(text, [n for n in words.subjects if n.startswith("step.")])
            raise AlertSyntaxError(
                f"'{text}' is not a step subject",
                hint=(f"did you mean '{close}'? or " if close else "") + "write step.<id>.duration or step.<id>.attempts",
            )
        if steps is not None and step not in steps:
            close = suggest(step, steps)
            raise AlertSyntaxError(
                f"unknown step '{step}' in {words.noun}",
                column=len("step.") + 1,
                length=len(step),
                hint=f"did you mean '{close}'?" if close else "use the id of a step of this pipeline",
            )
        return _STEP_FIELDS[field_name], step
    close = suggest(text, [*words.subjects, *(["failed"] if words.allow_failed else [])])
    raise AlertSyntaxError(
        f"unknown {words.noun} subject '{text}'",
        hint=(f"did you mean '{close}'? " if close else "") + "subjects: " + ", ".join(words.shown),
    )


def _duration(text: str) -> float | None:
    try:
        return parse_duration(text)
    except ValueError:
        return None


def _value(text: str, subject: Subject, column: int, name: str) -> tuple[float | None, float | None]:
    """Return (threshold, baseline_factor) for the VALUE part (``name``: the subject as written)."""
    kind = subject.kind
    m = re.fullmatch(rf"({_NUMBER})\s*x\s+baseline", text)
    if m:
        factor = float(m.group(1))
        if factor <= 0:
            raise AlertSyntaxError("a baseline factor must be above 0", column)
        return None, factor
    if text.endswith("%"):
        if kind != "rate":
            raise AlertSyntaxError(f"a percentage does not fit {name}", column, _VALUE_HINT[kind])
        number = text[:-1].strip()
        if not re.fullmatch(_NUMBER, number):
            raise AlertSyntaxError(f"'{text}' is not a percentage", column, "write e.g. 5%")
        return float(number) / 100.0, None
    if re.fullmatch(_NUMBER, text):
        value = float(text)
        if kind == "count" and value != int(value):
            raise AlertSyntaxError(f"'{text}' is not a whole number of {_COUNTED.get(subject, 'attempts')}", column)
        return value, None
    seconds = _duration(text)
    if seconds is not None:
        if kind != "time":
            raise AlertSyntaxError(f"a duration does not fit {name}", column, _VALUE_HINT[kind])
        return seconds, None
    raise AlertSyntaxError(f"'{text}' is not a value", column, _VALUE_HINT[kind])


_COUNTED = {Subject.QUEUE_DEPTH_MAX: "steps", Subject.RETRIES: "retries"}

_VALUE_HINT = {
    "rate": "write a fraction (0.05), a percentage (5%) or Nx baseline",
    "time": "write a duration (90s, 10m, 1h30m), a number of seconds or Nx baseline",
    "count": "write a whole number or Nx baseline",
    "number": "write a number or Nx baseline",
    "flag": "",
}


def parse_alert(text: str, *, steps: Collection[str] | None = None, vocabulary: Vocabulary = ALERTS) -> AlertRule:
    """Parse a ``when:`` expression (or, with ``vocabulary=THRESHOLDS``, a benchmark threshold);
    with ``steps``, step ids are checked against them.

    Raises ``AlertSyntaxError`` (a ``ValueError``) with a message for the user.
    """
    words = vocabulary
    stripped = text.strip()
    lead = len(text) - len(text.lstrip())
    either = "'failed' or " if words.allow_failed else ""
    if not stripped:
        raise AlertSyntaxError(
            f"empty {words.noun} expression", 1, f"write {either}SUBJECT OP VALUE, e.g. {words.example}"
        )
    if stripped == "failed":
        if not words.allow_failed:
            raise AlertSyntaxError(
                "'failed' is an alert condition, not a threshold", lead + 1,
                "a threshold says what must hold, e.g. step_error_rate <= 0 or error_rate < 1%",
            )
        return AlertRule(text=stripped, subject=Subject.FAILED)
    m = _OP.search(stripped)
    if m is None:
        raise AlertSyntaxError(
            f"'{stripped}' has no comparison",
            lead + 1,
            f"write {either}SUBJECT OP VALUE with OP one of > >= < <=, e.g. {words.example}",
        )
    op_col = lead + m.start() + 1
    if m.group() not in {o.value for o in Op}:
        raise AlertSyntaxError(f"'{m.group()}' is not a comparison", op_col, "use one of > >= < <=")
    left = stripped[: m.start()].strip()
    right = stripped[m.end() :].strip()
    if not left:
        raise AlertSyntaxError("missing subject before the comparison", lead + 1, "subjects: " + ", ".join(words.shown))
    if not right:
        raise AlertSyntaxError("missing value after the comparison", op_col + len(m.group()), _VALUE_HINT["time"])
    try:
        subject, step = _subject(left, steps, words)
    except AlertSyntaxError as exc:
        exc.column += lead
        raise
    value_col = lead + m.end() + (len(stripped[m.end() :]) - len(stripped[m.end() :].lstrip())) + 1
    if _OP.search(right):
        raise AlertSyntaxError(f"only one comparison per {words.noun}", value_col, f"write a second {words.noun} instead")
    threshold, factor = _value(right, subject, value_col, left)
    return AlertRule(
        text=stripped,
        subject=subject,
        step=step,
        op=Op(m.group()),
        threshold=threshold,
        baseline_factor=factor,
    )


__all__ = [
    "ALERTS",
    "SUBJECT_NAMES",
    "THRESHOLDS",
    "AlertRule",
    "AlertSyntaxError",
    "Op",
    "Subject",
    "Vocabulary",
    "parse_alert",
]
