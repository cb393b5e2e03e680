"""A run's metrics in the Prometheus exposition format: textfile (atomic) and Pushgateway.

Every metric is a gauge describing the *last* run of a pipeline (the pipeline is a label), the
shape node_exporter's textfile collector expects for cron jobs: write the file at the end of each
run and alert on ``time() - flowctl_last_run_timestamp_seconds``. The registry is
prometheus-client's own (never the global default one), rendered by ``write_to_textfile``
(temp file + rename) and sent by ``push_to_gateway`` (job ``flowctl``, grouped by pipeline, so
each push replaces that pipeline's previous figures).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from flowctl.errors import FlowctlError, UsageError
from flowctl.observe.metrics import RunMetrics
from flowctl.run.events import RunStatus, StepStatus

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

JOB = "flowctl"


def build_registry(metrics: RunMetrics) -> CollectorRegistry:
    """A fresh registry holding the figures of one run."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry(auto_describe=True)
    # Every series of a chaos run carries chaos="1" (issue 17): never mistaken for a real run.
    base = {"pipeline": metrics.pipeline, **({"chaos": "1"} if metrics.chaos else {})}

    def gauge(name: str, doc: str, value: float, **labels: str) -> None:
        metric = Gauge(name, doc, [*base, *labels], registry=registry)
        metric.labels(**base, **labels).set(value)

    end = metrics.finished_at if metrics.finished_at is not None else metrics.started_at + metrics.wall_seconds
    gauge("flowctl_last_run_timestamp_seconds", "When the last run of the pipeline ended (epoch seconds).", end)
    gauge("flowctl_last_run_start_timestamp_seconds", "When the last run of the pipeline started.", metrics.started_at)
    gauge(
        "flowctl_last_run_success",
        "1 if the last run succeeded (failures under continue_on_error allowed), else 0.",
        1.0 if metrics.status is RunStatus.SUCCEEDED else 0.0,
    )
    gauge("flowctl_last_run_duration_seconds", "Wall time of the last run.", metrics.wall_seconds)
    gauge("flowctl_last_run_attempts", "Attempts of step commands in the last run.", metrics.attempts)
    gauge("flowctl_last_run_failed_attempts", "Failed attempts in the last run.", metrics.failed_attempts)
    gauge("flowctl_last_run_retries", "Attempts beyond each step's first in the last run.", metrics.retries)
    if metrics.chaos:
        gauge("flowctl_last_run_injected_faults", "Faults chaos injected in the last run (issue 17).",
              metrics.injected_faults)
    gauge("flowctl_last_run_max_queue_depth", "Most steps ready but not started at once.", metrics.max_queue_depth)

    status = Gauge(
        "flowctl_last_run_status",
        "1 for the status of the last run, 0 for the others.",
        [*base, "status"],
        registry=registry,
    )
    for value in RunStatus:
        status.labels(**base, status=value.value).set(1.0 if value is metrics.status else 0.0)

    steps = Gauge(
        "flowctl_last_run_steps", "Steps of the last run by status.", [*base, "status"], registry=registry
    )
    for step_status in StepStatus:
        if step_status in (StepStatus.PENDING, StepStatus.READY, StepStatus.RUNNING):
            continue
        steps.labels(**base, status=step_status.value).set(metrics.counts.get(step_status.value, 0))

    duration = Gauge(
        "flowctl_last_run_step_duration_seconds",
        "Execution time of each step in the last run (first attempt start to last attempt end).",
        [*base, "step"],
        registry=registry,
    )
    attempts = Gauge(
        "flowctl_last_run_step_attempts", "Attempts of each step in the last run.", [*base, "step"], registry=registry
    )
    for step, seconds in sorted(metrics.step_duration.items()):
        duration.labels(**base, step=step).set(seconds)
    for step, count in sorted(metrics.step_attempts.items()):
        attempts.labels(**base, step=step).set(count)
    if metrics.worker_attempts:
        by_worker = Gauge(
            "flowctl_last_run_worker_attempts", "Attempts each Dask worker ran in the last run.",
            [*base, "worker"], registry=registry,
        )
        for worker, count in metrics.worker_attempts.items():
            by_worker.labels(**base, worker=worker).set(count)

    latencies = Gauge(
        "flowctl_last_run_step_latency_seconds",
        "Step latency (ready to finished) percentiles of the last run.",
        [*base, "percentile"],
        registry=registry,
    )
    waits = Gauge(
        "flowctl_last_run_queue_wait_seconds",
        "Queue wait (ready to started) percentiles of the last run.",
        [*base, "percentile"],
        registry=registry,
    )
    for q, attr in (("50", "p50"), ("95", "p95"), ("99", "p99")):
        latency = getattr(metrics.latency, attr)
        wait = getattr(metrics.queue_wait, attr)
        if latency is not None:
            latencies.labels(**base, percentile=q).set(latency)
        if wait is not None:
            waits.labels(**base, percentile=q).set(wait)
    if metrics.items:
        _item_gauges(registry, metrics, base)
    return registry


def _item_gauges(registry: CollectorRegistry, metrics: RunMetrics, base: dict[str, str]) -> None:
    """issue 15: each foreach step's items, and its dead-letter queue's depth (``base``: the
    run's labels, with chaos="1" for a chaos run, issue 17)."""
    from prometheus_client import Gauge

    dead = Gauge("flowctl_dead_letter_items", "Items of the step dead-lettered in the last run.",
                 [*base, "step"], registry=registry)
    counts = Gauge("flowctl_last_run_items", "Items of each foreach step of the last run by status.",
                   [*base, "step", "status"], registry=registry)
    rate = Gauge("flowctl_last_run_items_per_second", "Items each foreach step ended per second.",
                 [*base, "step"], registry=registry)
    errors = Gauge("flowctl_last_run_item_error_rate", "Items dead-lettered for real (not by chaos) over items that ran.",
                   [*base, "step"], registry=registry)
    durations = Gauge("flowctl_last_run_item_duration_seconds", "Item duration percentiles of the last run.",
                      [*base, "step", "percentile"], registry=registry)
    ready = Gauge("flowctl_last_run_item_queue_depth_max", "Most items (batches) of the step ready, waiting for a slot.",
                  [*base, "step"], registry=registry)
    for step, figures in metrics.items.items():
        dead.labels(**base, step=step).set(figures.dead_letter)
        for status, n in figures.counts.items():
            counts.labels(**base, step=step, status=status).set(n)
        if figures.per_second is not None:
            rate.labels(**base, step=step).set(figures.per_second)
        if figures.error_rate is not None:
            errors.labels(**base, step=step).set(figures.error_rate)
        if figures.queue_depth_max is not None:
            ready.labels(**base, step=step).set(figures.queue_depth_max)
        for q, attr in (("50", "p50"), ("95", "p95"), ("99", "p99")):
            value = getattr(figures.duration, attr)
            if value is not None:
                durations.labels(**base, step=step, percentile=q).set(value)


def write_textfile(metrics: RunMetrics, path: str | os.PathLike[str]) -> None:
    """Write the run's metrics to ``path`` atomically; raises UsageError when it cannot."""
    from prometheus_client import generate_latest, write_to_textfile

    from flowctl.outfiles import is_special

    target = os.fspath(path)
    try:
        if is_special(target):  # /dev/stdout, a pipe: written through, never renamed over (trial 17)
            with open(target, "wb") as fh:
                fh.write(generate_latest(build_registry(metrics)))
            return
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        write_to_textfile(target, build_registry(metrics))
    except OSError as exc:
        raise UsageError(f"--metrics-file: cannot write {target}: {exc.strerror or exc}") from exc


class PushError(FlowctlError):
    """The Pushgateway refused or could not be reached (reported, never fails the run)."""


def push(metrics: RunMetrics, gateway: str, *, timeout: float = 10.0) -> None:
    """Push the run's metrics to ``gateway`` (job ``flowctl``, grouping key pipeline)."""
    from prometheus_client import push_to_gateway

    try:
        push_to_gateway(
            gateway,
            job=JOB,
            registry=build_registry(metrics),
            grouping_key={"pipeline": metrics.pipeline, **({"chaos": "1"} if metrics.chaos else {})},
            timeout=timeout,
        )
    except Exception as exc:
        raise PushError(f"--pushgateway: could not push to {gateway}: {exc}") from exc


__all__ = ["JOB", "PushError", "build_registry", "push", "write_textfile"]
