"""``flowctl run`` with the observability options, as a real process: the JSON log parsed line by
line, the correlation id in the steps' environment, the Prometheus textfile and a real
Pushgateway, alerts that fire and do not, and notifiers that fail without changing the result."""

from __future__ import annotations

import http.server
import json
import re
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import run_flowctl

PIPELINE = """
version: 1
name: obs
secret_env: [TOKEN]
env:
  TOKEN: s3cr3t-t0ken
steps:
  first:
    run: 'echo "id=$FLOWCTL_RUN_ID step=$FLOWCTL_STEP attempt=$FLOWCTL_ATTEMPT" > ids-$FLOWCTL_STEP.txt; printf "tok: %s\\n" "$TOKEN"'
  flaky:
    run: 'test -f once || { touch once; exit 4; }'
    needs: [first]
    retries: 1
    retry_delay: 10ms
  last:
    run: sleep 0.05
    needs: [flaky]
"""


def _run_id(stdout: str) -> str:
    match = re.search(r"\b(\d{8}T\d{6}-[0-9a-f]{4})\b", stdout)
    assert match, stdout
    return match.group(1)


@pytest.fixture
def project(write_pipeline: Callable[..., Path]) -> Path:
    return write_pipeline(PIPELINE)


def test_json_log_file_one_event_per_line_with_the_correlation_id(project: Path, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "run.jsonl"
    result = run_flowctl("run", str(project), "--log-file", str(log), "--stream")
    assert result.returncode == 0, result.stdout + result.stderr
    run_id = _run_id(result.stdout)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[0]["event"] == "run_started" and records[0]["steps"] == ["first", "flaky", "last"]
    assert {r["run_id"] for r in records} == {run_id}
    assert {r["pipeline"] for r in records} == {"obs"}
    assert all(set(r) >= {"ts", "time", "event", "step", "attempt"} for r in records)
    finished = [r for r in records if r["event"] == "attempt_finished"]
    assert [(r["step"], r["attempt"], r["exit_code"]) for r in finished] == [
        ("first", 1, 0), ("flaky", 1, 4), ("flaky", 2, 0), ("last", 1, 0)
    ]
    assert all(r["duration"] >= 0 for r in finished)
    assert [r["step"] for r in records if r["event"] == "retry_scheduled"] == ["flaky"]
    events = [r["event"] for r in records]
    assert events.index("run_finished") < events.index("run_metrics")
    metrics = next(r for r in records if r["event"] == "run_metrics")
    assert (metrics["attempts"], metrics["failed_attempts"], metrics["retries"]) == (4, 1, 1)
    assert metrics["critical_path"] == ["first", "flaky", "last"]
    # the steps saw the same id in their environment
    assert (tmp_path / "ids-first.txt").read_text().strip() == f"id={run_id} step=first attempt=1"
    # the secret a step printed is masked in the JSON log, and in every file the run wrote
    assert any(r["event"] == "output" and r["line"] == "tok: ***" for r in records)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != project]
    assert log in written and any(p.name == "state.db" for p in written)
    assert [p for p in written if b"s3cr3t-t0ken" in p.read_bytes()] == []


def test_log_format_from_the_environment_goes_to_stderr(project: Path) -> None:
    result = run_flowctl("run", str(project), env={"FLOWCTL_LOG_FORMAT": "json"})
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert lines and lines[0]["event"] == "run_started" and lines[-1]["event"] == "run_metrics"


def test_bad_log_format_is_a_usage_error_before_anything_runs(project: Path, tmp_path: Path) -> None:
    result = run_flowctl("run", str(project), "--log-format", "xml")
    assert result.returncode == 2 and "unknown log format 'xml'" in result.stderr
    assert not (tmp_path / "ids-first.txt").exists()


def test_metrics_file_and_pushgateway(project: Path, tmp_path: Path, pushgateway: str) -> None:
    prom = tmp_path / "textfile" / "obs.prom"
    result = run_flowctl("run", str(project), "--metrics-file", str(prom), "--pushgateway", pushgateway, "-v")
    assert result.returncode == 0, result.stderr
    assert "error rate     1/4 attempts failed (25.0%)" in result.stdout  # -v: the metrics block
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(prom.read_text())
        for s in f.samples
    }
    assert samples[("flowctl_last_run_success", (("pipeline", "obs"),))] == 1.0
    assert samples[("flowctl_last_run_retries", (("pipeline", "obs"),))] == 1.0
    assert samples[("flowctl_last_run_steps", (("pipeline", "obs"), ("status", "succeeded")))] == 3.0
    assert samples[("flowctl_last_run_step_attempts", (("pipeline", "obs"), ("step", "flaky")))] == 2.0
    with urllib.request.urlopen(pushgateway + "/metrics", timeout=5) as response:
        pushed = response.read().decode()
    assert 'flowctl_last_run_success{instance="",job="flowctl",pipeline="obs"} 1' in pushed
    assert 'flowctl_last_run_step_attempts{instance="",job="flowctl",pipeline="obs",step="flaky"} 2' in pushed


def test_the_metrics_block_only_where_it_means_something(
    project: Path, write_pipeline: Callable[..., Path]
) -> None:
    small = run_flowctl("run", str(project))
    assert small.returncode == 0, small.stderr
    assert "throughput" not in small.stdout and "error rate" not in small.stdout  # 3 steps, well under 30 s
    many = "".join(f"  s{i}: {{run: 'true'}}\n" for i in range(11))
    big = run_flowctl("run", str(write_pipeline(f"version: 1\nname: many\nsteps:\n{many}", name="many.yaml")))
    assert big.returncode == 0, big.stderr
    lines = big.stdout.splitlines()
    totals = next(i for i, line in enumerate(lines) if line.startswith("11 succeeded"))
    assert lines[totals + 1].startswith("throughput     ")  # more than 10 steps ran: right after the totals


def test_unreachable_pushgateway_is_a_warning_not_a_failure(project: Path) -> None:
    result = run_flowctl("run", str(project), "--pushgateway", "http://127.0.0.1:9")
    assert result.returncode == 0
    assert "warning: --pushgateway: could not push" in result.stderr


def test_alerts_fire_and_a_timing_out_webhook_never_changes_the_result(
    write_pipeline: Callable[..., Path], tmp_path: Path, hook: http.server.ThreadingHTTPServer
) -> None:
    hook.delay = 1.0  # type: ignore[attr-defined]
    host, port = hook.server_address[:2]
    path = write_pipeline(
        f"""
        version: 1
        name: alerting
        steps:
          one:
            run: 'exit 5'
            retries: 1
            retry_delay: 10ms
        alerts:
          - when: error_rate >= 50%
            description: half the attempts failed
          - when: duration > 1h
        notify:
          - run: [{json.dumps(sys.executable)}, -c, "import sys; open('alert.json', 'a').write(sys.stdin.read() + '\\\\n')"]
          - webhook: http://{host}:{port}/hook
            timeout: 200ms
            retries: 1
        """
    )
    started = time.monotonic()
    result = run_flowctl("run", str(path))
    assert result.returncode == 1  # the step failed; alerts do not change that
    assert time.monotonic() - started < 10
    assert "FIRING  error_rate >= 50% - half the attempts failed (value 100.0%" in result.stdout
    assert "duration > 1h" not in result.stdout
    assert re.search(r"warning: notifier webhook: http://127\.0\.0\.1:\d+/… failed for 'error_rate >= 50%': timed out", result.stderr)
    assert hook.calls == 2  # type: ignore[attr-defined]
    (alert,) = [json.loads(line) for line in (tmp_path / "alert.json").read_text().splitlines()]
    assert alert["alert"] == "error_rate >= 50%" and alert["value"] == 1.0 and alert["pipeline"] == "alerting"
    # the root failure still comes after the metrics and alerts, at the end of the output
    assert result.stdout.index("FIRING") < result.stdout.index("Root failure: one")


def test_baseline_alert_needs_history_then_fires(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    """The baseline comes from earlier successful runs in the state store."""
    path = write_pipeline(
        """
        version: 1
        name: base
        steps:
          s:
            run: 'if [ -f fail-once ]; then rm fail-once; exit 1; fi'
            retries: 1
            retry_delay: 10ms
        alerts:
          - when: step.s.attempts > 1.5x baseline
        notify:
          - run: 'cat >> alerts.jsonl; echo >> alerts.jsonl'
        """
    )
    first = run_flowctl("run", str(path))
    assert first.returncode == 0, first.stderr
    assert "FIRING" not in first.stdout  # no successful run before: no baseline, cannot fire
    (tmp_path / "fail-once").write_text("")
    second = run_flowctl("run", str(path))
    assert second.returncode == 0, second.stderr
    assert "FIRING  step.s.attempts > 1.5x baseline (value 2, threshold 1.5, baseline 1)" in second.stdout
    (alert,) = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines() if line]
    assert alert["baseline"] == 1.0 and alert["value"] == 2.0 and alert["run_id"] == _run_id(second.stdout)
    check = run_flowctl("alerts", "check", str(path))
    assert check.returncode == 1 and "FIRING  step.s.attempts" in check.stdout


def test_mute_silences_alerts_notifiers_and_exports_and_says_so(
    write_pipeline: Callable[..., Path], tmp_path: Path
) -> None:
    """``FLOWCTL_MUTE=1`` (what ``flowctl bench`` gives its runs): nothing leaves the run, and the
    run says what it kept quiet; without it the same run fires and notifies."""
    path = write_pipeline(
        """
        version: 1
        name: loud
        steps:
          one: {run: 'exit 3'}
        alerts:
          - when: failed
        notify:
          - run: 'cat >> notified.jsonl'
        """
    )
    prom = tmp_path / "metrics.prom"
    muted = run_flowctl("run", str(path), "--metrics-file", str(prom), env={"FLOWCTL_MUTE": "1"})
    assert muted.returncode == 1
    assert "FIRING" not in muted.stdout
    assert not (tmp_path / "notified.jsonl").exists() and not prom.exists()
    assert "warning: FLOWCTL_MUTE is set: alerts, notifications, --metrics-file muted for this run" in muted.stderr
    loud = run_flowctl("run", str(path), "--metrics-file", str(prom), env={"FLOWCTL_MUTE": "0"})
    assert loud.returncode == 1 and "FIRING  failed" in loud.stdout
    assert (tmp_path / "notified.jsonl").read_text().strip() and prom.exists()
    assert "FLOWCTL_MUTE" not in loud.stderr
