"""``--threshold`` conditions: parsed with the alerts' grammar, judged against a benchmark.

A threshold states what must hold (``p99 < 2s``, ``error_rate < 1%``), as k6's do; the run of
``flowctl bench`` fails (exit 1) when one does not. The grammar, the subjects and their value
types are ``spec.alerts`` (``vocabulary=THRESHOLDS``); the values come from
``figures.subject_values``. ``Nx baseline`` means N times the same subject in the ``--compare``
export. A subject the benchmark has no value for (no step ran, say) fails the threshold: nothing
shows that it holds.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from flowctl.errors import UsageError
from flowctl.spec.alerts import THRESHOLDS, AlertRule, AlertSyntaxError, parse_alert


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    rule: AlertRule
    passed: bool
    value: float | None
    limit: float | None  # what the value was compared with (factor x baseline for baselines)
    baseline: float | None = None
    reason: str = ""  # why it could not be judged, when it could not

    def to_dict(self) -> dict[str, object]:
        assert self.rule.op is not None
        return {
            "threshold": self.rule.text,
            "subject": self.rule.key,
            "op": self.rule.op.value,
            "value": self.value,
            "limit": self.limit,
            "baseline": self.baseline,
            "passed": self.passed,
            "reason": self.reason or None,
        }


def parse_thresholds(texts: Sequence[str], steps: Collection[str], *, baseline: bool) -> tuple[AlertRule, ...]:
    """Parse every ``--threshold``; ``baseline``: whether ``--compare`` gives one.

    Raises ``UsageError`` naming the option and the expression, with the column and a "did you
    mean" where the grammar has one.
    """
    rules: list[AlertRule] = []
    for text in texts:
        try:
            rule = parse_alert(text, steps=steps, vocabulary=THRESHOLDS)
        except AlertSyntaxError as exc:
            raise UsageError(
                f"--threshold {text!r}: {exc.message} (at column {exc.column})", hint=exc.hint
            ) from None
        if rule.baseline_factor is not None and not baseline:
            raise UsageError(
                f"--threshold {text!r}: 'x baseline' needs a baseline",
                hint="add --compare FILE (an earlier --export-json), or give the limit as a value",
            )
        rules.append(rule)
    return tuple(rules)


def evaluate_thresholds(
    rules: Sequence[AlertRule],
    subjects: Mapping[str, float | None],
    baseline: Mapping[str, float | None] | None = None,
) -> tuple[ThresholdResult, ...]:
    """Judge each rule on ``subjects`` (``Aggregate.subjects``); ``baseline``: the subjects of
    the ``--compare`` export."""
    return tuple(_judge(rule, subjects, baseline or {}) for rule in rules)


def _judge(rule: AlertRule, subjects: Mapping[str, float | None], baseline: Mapping[str, float | None]) -> ThresholdResult:
    value = subjects.get(rule.key)
    if value is None:
        return ThresholdResult(rule, False, None, None, reason=f"no {rule.key} was measured")
    base = baseline.get(rule.key) if rule.baseline_factor is not None else None
    verdict = rule.holds(value, base)
    if verdict is None:
        return ThresholdResult(rule, False, value, None, reason=f"the baseline has no {rule.key}")
    passed, limit = verdict
    return ThresholdResult(rule, passed, value, limit, base)


__all__ = ["ThresholdResult", "evaluate_thresholds", "parse_thresholds"]
