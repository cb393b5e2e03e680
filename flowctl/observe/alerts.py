"""Alert evaluation against a run's metrics and baselines, and delivery to notifiers.

``evaluate_alerts`` is pure: a rule (``spec.alerts.AlertRule``), the run's ``RunMetrics`` and the
metrics of earlier runs give an ``AlertResult``. A baseline is the median of the subject over
the last 10 successful runs before this one (chaos runs left out); with none, a baseline rule
cannot fire.

``deliver`` sends every firing alert to every notifier: a ``CommandNotifier`` runs a command with
the alert as JSON on stdin and in ``FLOWCTL_ALERT`` (plus a few ``FLOWCTL_ALERT_*`` variables);
a ``WebhookNotifier`` POSTs the JSON with a timeout and retries. Deliveries run in parallel
threads, each bounded by its timeout; a failure is returned (and logged by the caller), never
raised, and never changes the run's result.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowctl.observe.metrics import RunMetrics, median
from flowctl.observe.trends import BASELINE_RUNS
from flowctl.run.events import RunStatus
from flowctl.spec.alerts import AlertRule, Subject, parse_alert

if TYPE_CHECKING:
    from flowctl.spec.model import Pipeline


def subject_value(rule: AlertRule, metrics: RunMetrics) -> float | None:
    """The value of the rule's subject in one run (None when the run has no such figure)."""
    subject = rule.subject
    if subject is Subject.FAILED:
        return 1.0 if (metrics.any_step_failed or metrics.status is RunStatus.FAILED) else 0.0
    if subject is Subject.ERROR_RATE:
        return metrics.error_rate
    if subject is Subject.STEP_ERROR_RATE:
        return metrics.step_error_rate
    if subject is Subject.DURATION:
        return metrics.wall_seconds
    if subject is Subject.QUEUE_WAIT_P99:
        return metrics.queue_wait.p99
    if subject is Subject.STEP_LATENCY_P99:
        return metrics.latency.p99
    if subject is Subject.DEAD_LETTER:  # 0 for a run without foreach steps: nothing is queued
        return float(sum(f.dead_letter for f in metrics.items.values()))
    if rule.step is None:  # a benchmark-only subject: ``parse_alert`` keeps them out of alerts
        return None
    if subject is Subject.STEP_DURATION:
        return metrics.step_duration.get(rule.step)
    attempts = metrics.step_attempts.get(rule.step)
    return float(attempts) if attempts is not None else None


def baseline(rule: AlertRule, history: Sequence[RunMetrics], *, exclude: str = "") -> float | None:
    """Median of the subject over the last ``BASELINE_RUNS`` successful runs (newest first);
    chaos runs never count (issue 17: injected faults must not shift a baseline)."""
    values: list[float] = []
    for past in history:
        if past.run_id == exclude or past.status is not RunStatus.SUCCEEDED or past.chaos:
            continue
        value = subject_value(rule, past)
        if value is not None:
            values.append(value)
        if len(values) == BASELINE_RUNS:
            break
    return median(values)


@dataclass(frozen=True, slots=True)
class AlertResult:
    rule: AlertRule
    fired: bool
    value: float | None
    threshold: float | None  # what the value was compared with (factor x baseline for baselines)
    baseline: float | None = None
    reason: str = ""  # why it could not be evaluated, when it could not
    description: str | None = None

    def to_dict(self, metrics: RunMetrics | None = None) -> dict[str, object]:
        payload: dict[str, object] = {
            "alert": self.rule.text,
            "description": self.description,
            "subject": self.rule.key,
            "op": self.rule.op.value if self.rule.op else None,
            "value": self.value,
            "threshold": self.threshold,
            "baseline": self.baseline,
            "fired": self.fired,
        }
        if self.reason:
            payload["reason"] = self.reason
        if metrics is not None:
            payload.update(
                run_id=metrics.run_id,
                pipeline=metrics.pipeline,
                status=metrics.status.value,
                started_at=metrics.started_at,
                finished_at=metrics.finished_at,
            )
        return payload


def evaluate_alert(
    rule: AlertRule, metrics: RunMetrics, history: Sequence[RunMetrics] = (), description: str | None = None
) -> AlertResult:
    """Evaluate one rule on ``metrics``; ``history`` holds earlier runs, newest first."""
    value = subject_value(rule, metrics)
    if rule.subject is Subject.FAILED:
        return AlertResult(rule, bool(value), value, None, description=description)
    if value is None:
        return AlertResult(rule, False, None, None, reason=f"this run has no {rule.key}", description=description)
    base = baseline(rule, history, exclude=metrics.run_id) if rule.baseline_factor is not None else None
    verdict = rule.holds(value, base)
    if verdict is None:
        return AlertResult(rule, False, value, None, reason="no baseline yet", description=description)
    fired, threshold = verdict
    return AlertResult(rule, fired, value, threshold, base, description=description)


def evaluate_alerts(
    rules: Sequence[tuple[AlertRule, str | None]], metrics: RunMetrics, history: Sequence[RunMetrics] = ()
) -> tuple[AlertResult, ...]:
    """Evaluate ``(rule, description)`` pairs, in order."""
    return tuple(evaluate_alert(rule, metrics, history, description) for rule, description in rules)


# -- notifiers --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandNotifier:
    """``run:``: a shell command (str) or argv (tuple), in ``cwd``."""

    run: str | tuple[str, ...]
    cwd: str | None = None
    timeout: float = 30.0

    def describe(self) -> str:
        return f"run: {self.run if isinstance(self.run, str) else ' '.join(self.run)}"


@dataclass(frozen=True, slots=True)
class WebhookNotifier:
    """``webhook:``: POST the alert as JSON; retried with back-off on errors and 5xx."""

    url: str
    timeout: float = 5.0
    retries: int = 2
    retry_delay: float = 0.5

    def describe(self) -> str:
        """The URL without its path, query or credentials: hook URLs often embed a token."""
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        hidden = "/…" if parts.path.strip("/") or parts.query else ""
        return f"webhook: {parts.scheme}://{host}{hidden}"


Notifier = CommandNotifier | WebhookNotifier


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of sending one alert to one notifier."""

    notifier: str
    alert: str
    ok: bool
    detail: str = ""
    tries: int = 1


def _run_command(notifier: CommandNotifier, payload: Mapping[str, object], environ: Mapping[str, str]) -> Delivery:
    body = json.dumps(payload, sort_keys=True)
    env = dict(environ)
    env.update(
        FLOWCTL_ALERT=body,
        FLOWCTL_ALERT_WHEN=str(payload.get("alert", "")),
        FLOWCTL_ALERT_VALUE="" if payload.get("value") is None else str(payload["value"]),
        FLOWCTL_RUN_ID=str(payload.get("run_id", "")),
        FLOWCTL_PIPELINE=str(payload.get("pipeline", "")),
    )
    argv = ["/bin/sh", "-c", notifier.run] if isinstance(notifier.run, str) else list(notifier.run)
    alert = str(payload.get("alert", ""))
    try:
        proc = subprocess.Popen(
            argv,
            cwd=notifier.cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        return Delivery(notifier.describe(), alert, False, f"could not start: {exc}")
    try:
        _, err = proc.communicate(body.encode(), timeout=notifier.timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        return Delivery(notifier.describe(), alert, False, f"timed out after {notifier.timeout:g}s")
    if proc.returncode != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return Delivery(notifier.describe(), alert, False, f"exit {proc.returncode} {last[0]}".rstrip())
    return Delivery(notifier.describe(), alert, True)


def _post(notifier: WebhookNotifier, payload: Mapping[str, object]) -> Delivery:
    import urllib.error
    import urllib.request

    body = json.dumps(payload, sort_keys=True).encode()
    alert = str(payload.get("alert", ""))
    detail = ""
    tries = 0
    for tries in range(1, notifier.retries + 2):
        request = urllib.request.Request(
            notifier.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "flowctl"},
        )
        try:
            with urllib.request.urlopen(request, timeout=notifier.timeout) as response:
                response.read(65536)
            return Delivery(notifier.describe(), alert, True, tries=tries)
        except urllib.error.HTTPError as exc:
            detail = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                break  # the hook refused the payload: retrying will not help
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            detail = "timed out" if isinstance(reason, TimeoutError) or "timed out" in str(reason) else str(reason)
        if tries <= notifier.retries:
            time.sleep(notifier.retry_delay * (2 ** (tries - 1)))
    return Delivery(notifier.describe(), alert, False, detail, tries=tries)


def deliver(
    fired: Sequence[AlertResult],
    notifiers: Sequence[Notifier],
    metrics: RunMetrics,
    *,
    environ: Mapping[str, str] | None = None,
    log: Callable[[Delivery], None] | None = None,
) -> tuple[Delivery, ...]:
    """Send every alert in ``fired`` to every notifier, in parallel; never raises for a notifier."""
    jobs = [(alert, notifier) for alert in fired if alert.fired for notifier in notifiers]
    if not jobs:
        return ()
    from concurrent.futures import ThreadPoolExecutor

    env = dict(os.environ if environ is None else environ)

    def send(job: tuple[AlertResult, Notifier]) -> Delivery:
        alert, notifier = job
        payload = alert.to_dict(metrics)
        try:
            if isinstance(notifier, CommandNotifier):
                return _run_command(notifier, payload, env)
            return _post(notifier, payload)
        except Exception as exc:
            return Delivery(notifier.describe(), alert.rule.text, False, f"{type(exc).__name__}: {exc}")

    with ThreadPoolExecutor(max_workers=min(8, len(jobs)), thread_name_prefix="flowctl-notify") as pool:
        results = tuple(pool.map(send, jobs))
    if log is not None:
        for result in results:
            log(result)
    return results




# -- from the pipeline model ------------------------------------------------------------------


def pipeline_rules(pipeline: Pipeline) -> tuple[tuple[AlertRule, str | None], ...]:
    """The pipeline's ``alerts:`` parsed (the validator has already rejected bad ones)."""
    return tuple((parse_alert(a.when, steps=tuple(pipeline.steps)), a.description) for a in pipeline.alerts)


def pipeline_notifiers(pipeline: Pipeline) -> tuple[Notifier, ...]:
    """The pipeline's ``notify:`` entries; commands run in the pipeline file's folder."""
    out: list[Notifier] = []
    for spec in pipeline.notify:
        if spec.webhook:
            out.append(
                WebhookNotifier(
                    spec.webhook,
                    timeout=spec.timeout if spec.timeout is not None else 5.0,
                    retries=spec.retries,
                )
            )
        elif spec.run is not None:
            run = spec.run if isinstance(spec.run, str) else tuple(spec.run)
            timeout = spec.timeout if spec.timeout is not None else 30.0
            out.append(CommandNotifier(run, cwd=pipeline.base_dir, timeout=timeout))
    return tuple(out)


def check_pipeline_alerts(
    pipeline: Pipeline,
    metrics: RunMetrics,
    history: Sequence[RunMetrics] = (),
    *,
    notify: bool = True,
    environ: Mapping[str, str] | None = None,
) -> tuple[tuple[AlertResult, ...], tuple[Delivery, ...]]:
    """Evaluate the pipeline's alerts on a run and, with ``notify``, send the firing ones."""
    results = evaluate_alerts(pipeline_rules(pipeline), metrics, history)
    fired = [r for r in results if r.fired]
    deliveries = deliver(fired, pipeline_notifiers(pipeline), metrics, environ=environ) if notify else ()
    return results, deliveries


__all__ = [
    "BASELINE_RUNS",
    "AlertResult",
    "CommandNotifier",
    "Delivery",
    "Notifier",
    "WebhookNotifier",
    "baseline",
    "check_pipeline_alerts",
    "deliver",
    "evaluate_alert",
    "evaluate_alerts",
    "pipeline_notifiers",
    "pipeline_rules",
    "subject_value",
]
