"""Alert evaluation on recorded runs, and delivery to a real command and a real HTTP server."""

from __future__ import annotations

import dataclasses
import http.server
import json
import sys
import time
from pathlib import Path

import pytest

from flowctl.observe.alerts import (
    CommandNotifier,
    WebhookNotifier,
    baseline,
    deliver,
    evaluate_alert,
    evaluate_alerts,
)
from flowctl.observe.metrics import RunMetrics, compute_run_metrics
from flowctl.run.events import RunStatus
from flowctl.spec.alerts import parse_alert
from tests.observe.helpers import recorded_run


@pytest.fixture
def metrics() -> RunMetrics:
    return compute_run_metrics(recorded_run())


def _past(metrics: RunMetrics, run_id: str, wall: float, status: RunStatus = RunStatus.SUCCEEDED) -> RunMetrics:
    return dataclasses.replace(metrics, run_id=run_id, wall_seconds=wall, status=status)


def test_one_alert_fires_and_one_does_not(metrics: RunMetrics) -> None:
    results = evaluate_alerts(
        [(parse_alert("error_rate > 50%"), "too many failures"), (parse_alert("error_rate > 60%"), None)], metrics
    )
    assert [r.fired for r in results] == [True, False]  # 4/7 = 57%
    assert results[0].value == pytest.approx(4 / 7) and results[0].threshold == 0.5
    assert results[0].description == "too many failures"


@pytest.mark.parametrize(
    ("when", "fired"),
    [
        ("failed", True),
        ("step_error_rate >= 40%", True),
        ("duration > 2m", True),
        ("duration > 2m10s", False),
        ("queue_wait_p99 < 5s", True),
        ("step_latency_p99 > 87.5", True),
        ("step.load.duration >= 90s", True),
        ("step.transform.attempts > 2", False),
        ("step.transform.attempts >= 2", True),
    ],
)
def test_each_subject(metrics: RunMetrics, when: str, fired: bool) -> None:
    assert evaluate_alert(parse_alert(when), metrics).fired is fired


def test_failed_does_not_fire_on_a_clean_run(metrics: RunMetrics) -> None:
    clean = dataclasses.replace(metrics, status=RunStatus.SUCCEEDED, step_status={"a": metrics.step_status["load"]})
    assert not evaluate_alert(parse_alert("failed"), clean).fired


def test_baseline_is_the_median_of_the_last_ten_successful_runs(metrics: RunMetrics) -> None:
    rule = parse_alert("duration > 2x baseline")
    # newest first: 12 successful runs plus failed ones that must not count
    history = [_past(metrics, f"ok{i}", wall) for i, wall in enumerate([50, 60, 70, 40, 60, 55, 65, 60, 62, 58, 500, 500])]
    history.insert(1, _past(metrics, "bad", 10.0, RunStatus.FAILED))
    assert baseline(rule, history) == 60.0  # median of the first ten successful: 40 50 55 58 60 60 60 62 65 70
    result = evaluate_alert(rule, metrics, history)  # 130 > 2 x 60
    assert result.fired and result.baseline == 60.0 and result.threshold == 120.0
    slower = [_past(metrics, f"s{i}", 70.0) for i in range(3)]
    assert not evaluate_alert(rule, metrics, slower).fired  # 130 < 140


def test_no_baseline_means_it_cannot_fire(metrics: RunMetrics) -> None:
    result = evaluate_alert(parse_alert("duration > 0.1x baseline"), metrics, [_past(metrics, "f", 5, RunStatus.FAILED)])
    assert not result.fired and result.reason == "no baseline yet"
    # the run itself is never its own baseline
    assert not evaluate_alert(parse_alert("duration > 0.1x baseline"), metrics, [metrics]).fired


def test_a_step_absent_from_the_run_does_not_fire(metrics: RunMetrics) -> None:
    result = evaluate_alert(parse_alert("step.publish.duration > 0"), metrics)
    assert not result.fired and "no step.publish.duration" in result.reason


# -- delivery ----------------------------------------------------------------------------------


def _url(server: http.server.ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/hook"


def test_every_firing_alert_reaches_every_notifier(metrics: RunMetrics, hook: http.server.ThreadingHTTPServer, tmp_path: Path) -> None:
    fired = [r for r in evaluate_alerts([(parse_alert("failed"), "a step failed"), (parse_alert("error_rate > 5%"), None)], metrics)]
    script = tmp_path / "page.py"
    script.write_text(
        "import json, os, sys\n"
        "data = json.load(sys.stdin)\n"
        "with open(os.path.join(os.path.dirname(__file__), 'paged.jsonl'), 'a') as fh:\n"
        "    fh.write(json.dumps({'stdin': data, 'env': json.loads(os.environ['FLOWCTL_ALERT']),\n"
        "                         'when': os.environ['FLOWCTL_ALERT_WHEN'], 'run': os.environ['FLOWCTL_RUN_ID']}) + '\\n')\n"
    )
    notifiers = [CommandNotifier((sys.executable, str(script)), cwd=str(tmp_path)), WebhookNotifier(_url(hook))]
    results = deliver(fired, notifiers, metrics)
    assert [r.ok for r in results] == [True, True, True, True]
    paged = [json.loads(line) for line in (tmp_path / "paged.jsonl").read_text().splitlines()]
    assert sorted(p["when"] for p in paged) == ["error_rate > 5%", "failed"]
    for p in paged:
        assert p["stdin"] == p["env"] and p["run"] == metrics.run_id and p["stdin"]["pipeline"] == "etl"
    posted = hook.received  # type: ignore[attr-defined]
    assert sorted(p["alert"] for p in posted) == ["error_rate > 5%", "failed"]
    error_rate = next(p for p in posted if p["alert"] == "error_rate > 5%")
    assert error_rate["threshold"] == 0.05 and error_rate["fired"] is True and error_rate["run_id"] == metrics.run_id


def test_a_webhook_that_times_out_is_retried_then_given_up(metrics: RunMetrics, hook: http.server.ThreadingHTTPServer) -> None:
    hook.delay = 5.0  # type: ignore[attr-defined]
    fired = [evaluate_alert(parse_alert("failed"), metrics)]
    logged = []
    started = time.monotonic()
    (result,) = deliver(fired, [WebhookNotifier(_url(hook), timeout=0.2, retries=1, retry_delay=0.05)], metrics, log=logged.append)
    elapsed = time.monotonic() - started
    assert not result.ok and result.tries == 2 and "timed out" in result.detail
    # bounded by timeout x tries + back-off (0.45 s), never by the slow server: a single answer
    # waited for would take 5 s (a loose bound, so a busy machine does not fail it)
    assert elapsed < hook.delay  # type: ignore[attr-defined]
    assert logged == [result]


def test_a_webhook_answering_503_is_retried(metrics: RunMetrics, hook: http.server.ThreadingHTTPServer) -> None:
    hook.fail_first = 1  # type: ignore[attr-defined]
    (result,) = deliver([evaluate_alert(parse_alert("failed"), metrics)], [WebhookNotifier(_url(hook), retry_delay=0.01)], metrics)
    assert result.ok and result.tries == 2 and len(hook.received) == 1  # type: ignore[attr-defined]


def test_failing_notifiers_are_reported_not_raised(metrics: RunMetrics, tmp_path: Path) -> None:
    fired = [evaluate_alert(parse_alert("failed"), metrics)]
    results = deliver(
        fired,
        [
            CommandNotifier("echo nope >&2; exit 3"),
            CommandNotifier("sleep 5", timeout=0.2),
            CommandNotifier((str(tmp_path / "missing"),)),
            WebhookNotifier("http://127.0.0.1:9/", timeout=0.5, retries=0),
        ],
        metrics,
    )
    assert [r.ok for r in results] == [False] * 4
    assert results[0].detail == "exit 3 nope"
    assert "timed out" in results[1].detail
    assert "could not start" in results[2].detail
    assert results[3].detail


def test_webhook_descriptions_hide_tokens() -> None:
    hook = WebhookNotifier("https://user:pw@hooks.example.com:8443/services/T000/B000/XXXX?token=1")
    assert hook.describe() == "webhook: https://hooks.example.com:8443/…"
    assert WebhookNotifier("http://127.0.0.1/").describe() == "webhook: http://127.0.0.1"


def test_nothing_fired_sends_nothing(metrics: RunMetrics, hook: http.server.ThreadingHTTPServer) -> None:
    assert deliver([], [WebhookNotifier(_url(hook))], metrics) == ()
    assert hook.received == []  # type: ignore[attr-defined]


def test_chaos_runs_never_shift_a_baseline(metrics: RunMetrics) -> None:
    """Issue 17: runs with injected faults (slow, failing by design) are left out of baselines."""
    rule = parse_alert("duration > 2x baseline")
    real = [_past(metrics, f"ok{i}", 60.0) for i in range(10)]
    chaotic = [dataclasses.replace(_past(metrics, f"chaos{i}", 1000.0), chaos=True) for i in range(10)]
    assert baseline(rule, [*chaotic, *real]) == 60.0  # the newest ten are chaos runs: skipped
    assert evaluate_alert(rule, metrics, [*chaotic, *real]).fired  # 130 > 2 x 60, not < 2 x 1000
    assert baseline(rule, chaotic) is None  # chaos runs alone give no baseline
