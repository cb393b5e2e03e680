"""The ``when:`` grammar: what parses to which rule, and the message for what does not."""

from __future__ import annotations

import pytest

from flowctl.spec.alerts import THRESHOLDS, AlertSyntaxError, Op, Subject, parse_alert


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
        ("dead_letter > 0", Subject.DEAD_LETTER, None, Op.GT, 0.0, None),
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


# -- the same grammar for `flowctl bench --threshold` (issue 17) ------------------------------


@pytest.mark.parametrize(
    ("text", "subject", "threshold"),
    [
        ("p99<1ms", Subject.STEP_LATENCY_P99, 0.001),
        ("step.p99 < 2s", Subject.STEP_LATENCY_P99, 2.0),
        ("step_latency_p99 < 2s", Subject.STEP_LATENCY_P99, 2.0),
        ("p50 <= 250ms", Subject.STEP_LATENCY_P50, 0.25),
        ("step.p95 < 1", Subject.STEP_LATENCY_P95, 1.0),
        ("error_rate < 1%", Subject.ERROR_RATE, 0.01),
        ("queue_wait.p99 < 100ms", Subject.QUEUE_WAIT_P99, 0.1),
        ("queue_wait_p50 < 5ms", Subject.QUEUE_WAIT_P50, 0.005),
        ("queue_depth_max <= 4", Subject.QUEUE_DEPTH_MAX, 4.0),
        ("queue_depth.mean < 1.5", Subject.QUEUE_DEPTH_MEAN, 1.5),
        ("throughput > 12.5", Subject.THROUGHPUT, 12.5),
        ("retries <= 0", Subject.RETRIES, 0.0),
        ("duration < 3s", Subject.DURATION, 3.0),
        ("wall.max < 5s", Subject.WALL_MAX, 5.0),
        ("overhead < 500ms", Subject.OVERHEAD, 0.5),
    ],
)
def test_threshold_subjects(text: str, subject: Subject, threshold: float) -> None:
    rule = parse_alert(text, vocabulary=THRESHOLDS)
    assert rule.subject is subject and rule.threshold == pytest.approx(threshold)


@pytest.mark.parametrize("text", ["p99 < 1s", "throughput > 3", "queue_depth_max < 2", "overhead < 1s"])
def test_benchmark_subjects_are_no_alert_subjects(text: str) -> None:
    with pytest.raises(AlertSyntaxError, match="unknown alert subject"):
        parse_alert(text)


def test_dead_letter_is_no_benchmark_threshold() -> None:
    """A benchmark has no dead-letter queue: only pipeline alerts take ``dead_letter``."""
    with pytest.raises(AlertSyntaxError, match="unknown threshold subject"):
        parse_alert("dead_letter > 0", vocabulary=THRESHOLDS)
    with pytest.raises(AlertSyntaxError, match="not a whole number"):
        parse_alert("dead_letter > 0.5")


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("p999 < 1s", "unknown threshold subject 'p999'", "did you mean 'p99'?"),
        ("step.p999 < 1s", "'step.p999' is not a step subject", "did you mean 'step.p99'?"),
        ("throughput > 5%", "a percentage does not fit throughput", "write a number"),
        ("p99 < 3 steps", "'3 steps' is not a value", "write a duration"),
        ("retries < 0.5", "not a whole number of retries", None),
        ("failed", "'failed' is an alert condition, not a threshold", "a threshold says what must hold"),
        ("", "empty threshold expression", "e.g. p99 < 2s"),
    ],
)
def test_bad_thresholds_say_what_to_write(text: str, message: str, hint: str | None) -> None:
    with pytest.raises(AlertSyntaxError, match=message) as info:
        parse_alert(text, vocabulary=THRESHOLDS)
    if hint is not None:
        assert info.value.hint is not None and hint in info.value.hint


def test_threshold_steps_are_checked_like_alert_steps() -> None:
    assert parse_alert("step.load.duration < 1m", steps=("load",), vocabulary=THRESHOLDS).step == "load"
    with pytest.raises(AlertSyntaxError, match="unknown step 'lod' in threshold") as info:
        parse_alert("step.lod.attempts <= 1", steps=("load",), vocabulary=THRESHOLDS)
    assert info.value.hint == "did you mean 'load'?"
