"""The ``when:`` grammar: what parses to which rule, and the message for what does not."""

from __future__ import annotations

import pytest

from flowctl.spec.alerts import AlertSyntaxError, Op, Subject, parse_alert


@pytest.mark.parametrize(
    ("text", "subject", "step", "op", "threshold", "factor"),
    [
        ("failed", Subject.FAILED, None, None, None, None),
        ("error_rate > 5%", Subject.ERROR_RATE, None, Op.GT, 0.05, None),
        ("step_error_rate>=0.25", Subject.STEP_ERROR_RATE, None, Op.GE, 0.25, None),
        ("duration > 2x baseline", Subject.DURATION, None, Op.GT, None, 2.0),
        ("duration < 1.5 x baseline", Subject.DURATION, None, Op.LT, None, 1.5),
        ("queue_wait_p99 <= 1h30m", Subject.QUEUE_WAIT_P99, None, Op.LE, 5400.0, None),
        ("step_latency_p99 > 90", Subject.STEP_LATENCY_P99, None, Op.GT, 90.0, None),
        ("step.load.duration > 10m", Subject.STEP_DURATION, "load", Op.GT, 600.0, None),
        ("step.load-2.attempts >= 3", Subject.STEP_ATTEMPTS, "load-2", Op.GE, 3.0, None),
        ("  step.x.duration > 250ms  ", Subject.STEP_DURATION, "x", Op.GT, 0.25, None),
    ],
)
def test_valid_expressions(
    text: str, subject: Subject, step: str | None, op: Op | None, threshold: float | None, factor: float | None
) -> None:
    rule = parse_alert(text)
    assert (rule.subject, rule.step, rule.op, rule.baseline_factor) == (subject, step, op, factor)
    assert rule.threshold == pytest.approx(threshold) if threshold is not None else rule.threshold is None
    assert rule.text == text.strip()


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("", "empty alert expression", 1),
        ("error_rat > 5%", "unknown alert subject 'error_rat'", 1),
        ("duration", "has no comparison", 1),
        ("duration > ", "missing value", 11),
        ("duration = 3", "'=' is not a comparison", 10),
        ("duration > 5%", "a percentage does not fit duration", 12),
        ("error_rate > 10m", "a duration does not fit error_rate", 14),
        ("step.load.attempts > 1.5", "not a whole number", 22),
        ("step.load.size > 3", "not a step subject", 1),
        ("duration > 0x baseline", "above 0", 12),
        ("duration > 1 < 2", "only one comparison", 12),
        ("duration > soon", "'soon' is not a value", 12),
        ("  bogus > 1", "unknown alert subject", 3),
    ],
)
def test_invalid_expressions_say_what_and_where(text: str, message: str, column: int) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_alert(text)
    assert isinstance(info.value, AlertSyntaxError)
    assert info.value.column == column


def test_unknown_step_is_reported_with_a_suggestion() -> None:
    with pytest.raises(AlertSyntaxError) as info:
        parse_alert("step.lod.duration > 1m", steps=("load", "extract"))
    assert str(info.value) == "unknown step 'lod' in alert"
    assert info.value.hint == "did you mean 'load'?"
    assert info.value.column == 6
    assert parse_alert("step.load.duration > 1m", steps=("load",)).step == "load"


def test_subject_typos_get_a_suggestion() -> None:
    with pytest.raises(AlertSyntaxError) as info:
        parse_alert("eror_rate > 1%")
    assert info.value.hint is not None and info.value.hint.startswith("did you mean 'error_rate'?")
