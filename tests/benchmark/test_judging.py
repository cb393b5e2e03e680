"""Thresholds and comparisons: what holds, what changed, and which way is worse."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowctl.benchmark.compare import IMPROVEMENT, NO_CHANGE, REGRESSION, UNKNOWN, judge
from flowctl.benchmark.figures import FIGURES, Summary, aggregate, figure
from flowctl.benchmark.thresholds import evaluate_thresholds, parse_thresholds
from flowctl.errors import UsageError
from tests.benchmark.helpers import sample

_WALL, _THROUGHPUT, _QUEUE_WAIT = figure("wall"), figure("throughput"), figure("queue_wait_p99")


def _summary(mean: float, sd: float | None) -> Summary:
    return Summary(count=5, mean=mean, sd=sd, median=mean, min=mean, max=mean)


def test_a_change_inside_two_sd_is_no_change() -> None:
    assert judge(_WALL, _summary(1.0, 0.05), _summary(1.09, 0.01)).verdict == NO_CHANGE  # band 0.10
    slower = judge(_WALL, _summary(1.0, 0.05), _summary(1.11, 0.01))
    assert slower.verdict == REGRESSION and slower.band == pytest.approx(0.10)
    assert slower.change == pytest.approx(0.11) and slower.ratio == pytest.approx(1.11)
    assert judge(_WALL, _summary(1.0, 0.05), _summary(0.8, 0.01)).verdict == IMPROVEMENT


def test_higher_throughput_is_better() -> None:
    assert judge(_THROUGHPUT, _summary(10.0, 0.1), _summary(5.0, 0.1)).verdict == REGRESSION
    assert judge(_THROUGHPUT, _summary(10.0, 0.1), _summary(20.0, 0.1)).verdict == IMPROVEMENT


def test_the_band_has_floors() -> None:
    # no spread at all: 2% of the baseline is still noise ...
    assert judge(_WALL, _summary(1.0, 0.0), _summary(1.019, 0.0)).verdict == NO_CHANGE
    assert judge(_WALL, _summary(1.0, 0.0), _summary(1.03, 0.0)).verdict == REGRESSION
    # ... and so are microseconds of queue wait
    assert judge(_QUEUE_WAIT, _summary(30e-6, 1e-6), _summary(60e-6, 1e-6)).verdict == NO_CHANGE
    assert judge(_QUEUE_WAIT, _summary(30e-6, 1e-6), _summary(5e-3, 1e-6)).verdict == REGRESSION


def test_nothing_measured_is_not_judged() -> None:
    assert judge(_WALL, Summary(), _summary(1.0, 0.1)).verdict == UNKNOWN


_MEANS = st.floats(min_value=0.0, max_value=1e4, allow_nan=False)
_SDS = st.one_of(st.none(), st.floats(min_value=0.0, max_value=1e3, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIGURES), _MEANS, _SDS, _MEANS, _SDS)
def test_judging_is_consistent(fig: object, m1: float, sd1: float | None, m2: float, sd2: float | None) -> None:
    """The same figures compared with themselves never changed; swapping the two sides turns a
    regression into an improvement (and back) whenever the band is symmetric."""
    from flowctl.benchmark.figures import Figure

    assert isinstance(fig, Figure)
    a, b = _summary(m1, sd1), _summary(m2, sd2)
    assert judge(fig, a, a).verdict == NO_CHANGE
    forward, backward = judge(fig, a, b), judge(fig, b, a)
    if forward.band == backward.band:
        swapped = {REGRESSION: IMPROVEMENT, IMPROVEMENT: REGRESSION, NO_CHANGE: NO_CHANGE}
        assert backward.verdict == swapped[forward.verdict]
    if forward.verdict != NO_CHANGE:
        assert forward.band is not None and abs(m2 - m1) > forward.band


def test_thresholds_hold_or_fail_and_say_why() -> None:
    agg = aggregate([sample(1, step_times=((0.0, 0.0, 0.01),)), sample(2, step_times=((0.0, 0.0, 0.012),))])
    rules = parse_thresholds(["p99<1ms", "error_rate < 1%", "step.s0.attempts <= 1", "p99 < 2x baseline"], ["s0"], baseline=True)
    tight, errors, attempts, relative = evaluate_thresholds(rules, agg.subjects, {"step_latency_p99": 0.005})
    assert not tight.passed and tight.value == pytest.approx(agg.latency.p99) and tight.limit == 0.001
    assert errors.passed and errors.value == 0.0
    assert attempts.passed
    assert not relative.passed and relative.limit == pytest.approx(0.01) and relative.baseline == 0.005
    (unmeasured,) = evaluate_thresholds(parse_thresholds(["p99 < 1s"], ["s0"], baseline=False), aggregate([]).subjects)
    assert not unmeasured.passed and unmeasured.reason == "no step_latency_p99 was measured"


def test_bad_thresholds_are_usage_errors_naming_the_option() -> None:
    with pytest.raises(UsageError) as info:
        parse_thresholds(["p999 < 1s"], ["s0"], baseline=False)
    assert info.value.message.startswith("--threshold 'p999 < 1s': unknown threshold subject 'p999'")
    assert info.value.hint is not None and info.value.hint.startswith("did you mean 'p99'?")
    with pytest.raises(UsageError, match="'x baseline' needs a baseline") as info:
        parse_thresholds(["p99 < 2x baseline"], ["s0"], baseline=False)
    assert info.value.hint is not None and "--compare" in info.value.hint
    with pytest.raises(UsageError, match="unknown step 'lod' in threshold"):
        parse_thresholds(["step.lod.duration < 1s"], ["load"], baseline=False)
