"""The Prometheus export: parsed by prometheus-client, served by a real node_exporter's textfile
collector, and pushed to a real Pushgateway (both started here on 127.0.0.1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from flowctl.observe.metrics import RunMetrics, compute_run_metrics
from flowctl.observe.prometheus import PushError, push, write_textfile
from tests.observe.helpers import recorded_run


@pytest.fixture
def metrics() -> RunMetrics:
    return compute_run_metrics(recorded_run())


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k not in ("instance", "job")))
            out[(sample.name, labels)] = sample.value
    return out


def _expected(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> None:
    etl = (("pipeline", "etl"),)
    assert samples[("flowctl_last_run_timestamp_seconds", etl)] == 1130.0
    assert samples[("flowctl_last_run_success", etl)] == 0.0
    assert samples[("flowctl_last_run_duration_seconds", etl)] == 130.0
    assert samples[("flowctl_last_run_attempts", etl)] == 7.0
    assert samples[("flowctl_last_run_retries", etl)] == 2.0
    assert samples[("flowctl_last_run_steps", (("pipeline", "etl"), ("status", "succeeded")))] == 3.0
    assert samples[("flowctl_last_run_steps", (("pipeline", "etl"), ("status", "skipped")))] == 1.0
    assert samples[("flowctl_last_run_steps", (("pipeline", "etl"), ("status", "cancelled")))] == 0.0
    assert samples[("flowctl_last_run_status", (("pipeline", "etl"), ("status", "failed")))] == 1.0
    assert samples[("flowctl_last_run_step_duration_seconds", (("pipeline", "etl"), ("step", "load")))] == 90.0
    assert samples[("flowctl_last_run_step_attempts", (("pipeline", "etl"), ("step", "transform")))] == 2.0
    assert samples[("flowctl_last_run_queue_wait_seconds", (("percentile", "50"), ("pipeline", "etl")))] == 1.0


def test_textfile_parses_back(metrics: RunMetrics, tmp_path: Path) -> None:
    path = tmp_path / "prom" / "etl.prom"
    write_textfile(metrics, path)
    _expected(_samples(path.read_text()))
    assert os.listdir(path.parent) == ["etl.prom"]  # the temp file was renamed into place


def test_textfile_is_served_by_node_exporter_without_scrape_errors(
    metrics: RunMetrics, node_exporter: tuple[str, str]
) -> None:
    url, folder = node_exporter
    write_textfile(metrics, os.path.join(folder, "flowctl-etl.prom"))
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples = _samples(text)
    assert samples[("node_textfile_scrape_error", ())] == 0.0
    _expected(samples)


def test_promtool_accepts_the_file(metrics: RunMetrics, tmp_path: Path) -> None:
    """``promtool check metrics`` (Debian ``prometheus``) lints names, types and labels."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install -y --no-install-recommends prometheus)")
    path = tmp_path / "etl.prom"
    write_textfile(metrics, path)
    with path.open("rb") as fh:
        result = subprocess.run(
            [promtool, "check", "metrics"], stdin=fh, capture_output=True, text=True, timeout=30, check=False
        )
    assert result.returncode == 0, result.stdout + result.stderr


def test_push_reaches_a_real_pushgateway(metrics: RunMetrics, pushgateway: str) -> None:
    push(metrics, pushgateway)
    with urllib.request.urlopen(pushgateway + "/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'flowctl_last_run_success{instance="",job="flowctl",pipeline="etl"} 0' in text
    _expected(_samples(text))


def test_unreachable_gateway_is_reported(metrics: RunMetrics) -> None:
    with pytest.raises(PushError, match="could not push"):
        push(metrics, "http://127.0.0.1:9", timeout=1)


def test_attempts_per_dask_worker_are_a_labelled_gauge(metrics: RunMetrics, tmp_path: Path) -> None:
    import dataclasses

    path = tmp_path / "etl.prom"
    write_textfile(metrics, path)
    assert not any(name == "flowctl_last_run_worker_attempts" for name, _ in _samples(path.read_text()))
    on_dask = dataclasses.replace(metrics, worker_attempts={"tcp://10.0.0.7:40117": 5, "tcp://10.0.0.8:40117": 2})
    write_textfile(on_dask, path)
    samples = _samples(path.read_text())
    assert samples[("flowctl_last_run_worker_attempts", (("pipeline", "etl"), ("worker", "tcp://10.0.0.7:40117")))] == 5
    assert samples[("flowctl_last_run_worker_attempts", (("pipeline", "etl"), ("worker", "tcp://10.0.0.8:40117")))] == 2
