"""What ``flowctl run`` adds for observability: its sinks, and the work after the run ends.

``RunObserver`` is built before the run (so a bad ``--log-format`` or an unwritable
``--log-file`` is a usage error before any step starts). Its ``sinks`` go into the run's
fan-out: the ``RunRecorder`` (metrics need no database) and, with ``--log-format json``, the JSON
log. ``finish`` runs once the run has ended: it computes the run's metrics, writes
``--metrics-file`` (atomically), pushes to ``--pushgateway``, evaluates the pipeline's alerts
against baselines from the state store and sends the firing ones to the notifiers. Nothing there
changes the run's exit code: every failure becomes a warning line (and a JSON log record).

``FLOWCTL_MUTE=1`` in the environment (set by ``flowctl bench`` for the runs it measures, issue
17) mutes all of that end-of-run work that reaches outside the run: no alerts are evaluated, no
notifier is called, nothing is written to ``--metrics-file`` or pushed. The run says so in a
warning whenever it muted something, so a stray variable never silences alerts unnoticed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flowctl.errors import FlowctlError
from flowctl.observe.jsonlog import JsonLogSink, log_format, open_log
from flowctl.observe.metrics import RunMetrics, compute_run_metrics
from flowctl.observe.records import RunRecorder
from flowctl.run.ports import EventSink

if TYPE_CHECKING:
    from flowctl.observe.alerts import AlertResult, Delivery
    from flowctl.spec.model import Pipeline

#: Runs read from the store for baselines: 10 successful ones are needed among them.
HISTORY_RUNS = 30

#: Set to a non-empty value other than ``0``: no alerts, notifications or metrics exports.
MUTE_ENV = "FLOWCTL_MUTE"


def muted(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` asks to mute alerts, notifications and metrics exports."""
    return environ.get(MUTE_ENV, "") not in ("", "0")


@dataclass(frozen=True, slots=True)
class RunReport:
    """What observing a finished run produced: metrics, alert results, deliveries, warnings."""

    metrics: RunMetrics
    alerts: tuple[AlertResult, ...] = ()
    deliveries: tuple[Delivery, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)


class RunObserver:
    """Sinks and end-of-run work for one run of ``pipeline``; raises UsageError on bad options."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        log_format_option: str | None = None,
        log_file: str | None = None,
        metrics_file: str | None = None,
        pushgateway: str | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self._environ = dict(os.environ if environ is None else environ)
        self._metrics_file = metrics_file
        self._pushgateway = pushgateway
        self._state_dir = state_dir
        self._needs = {sid: step.needs for sid, step in pipeline.steps.items()}
        self.recorder = RunRecorder(self._needs)
        fmt = log_format(log_format_option, self._environ)
        # --log-file names where the JSON log goes, so it implies the JSON format.
        self.log: JsonLogSink | None = None
        if fmt == "json" or log_file:
            self.log = open_log(log_file, pipeline=pipeline.name)

    @property
    def sinks(self) -> tuple[EventSink, ...]:
        return (self.recorder,) if self.log is None else (self.recorder, self.log)

    def finish(self) -> RunReport:
        """Metrics, export, alerts and notifications for the run that just ended; never raises."""
        metrics = compute_run_metrics(self.recorder.record(now=time.time()), now=time.time())
        warnings: list[str] = []
        if muted(self._environ):
            silenced = [
                what for what, on in (
                    ("alerts", bool(self.pipeline.alerts)), ("notifications", bool(self.pipeline.notify)),
                    ("--metrics-file", bool(self._metrics_file)), ("--pushgateway", bool(self._pushgateway)),
                ) if on
            ]
            if silenced:
                warnings.append(f"{MUTE_ENV} is set: {', '.join(silenced)} muted for this run")
            self._log_outcome(metrics, (), (), warnings)
            return RunReport(metrics, (), (), tuple(warnings))
        if self._metrics_file:
            from flowctl.observe.prometheus import write_textfile

            try:
                write_textfile(metrics, self._metrics_file)
            except FlowctlError as exc:
                warnings.append(exc.message)
        if self._pushgateway:
            from flowctl.observe.prometheus import push

            try:
                push(metrics, self._pushgateway)
            except FlowctlError as exc:
                warnings.append(exc.message)
        results: tuple[AlertResult, ...] = ()
        deliveries: tuple[Delivery, ...] = ()
        if self.pipeline.alerts:
            from flowctl.observe.alerts import check_pipeline_alerts

            try:
                results, deliveries = check_pipeline_alerts(
                    self.pipeline, metrics, self._history(warnings), environ=self._environ
                )
            except Exception as exc:
                warnings.append(f"alerts could not be evaluated: {type(exc).__name__}: {exc}")
        for d in deliveries:
            if not d.ok:
                warnings.append(f"notifier {d.notifier} failed for '{d.alert}': {d.detail}")
        self._log_outcome(metrics, results, deliveries, warnings)
        return RunReport(metrics, results, deliveries, tuple(warnings))

    def _history(self, warnings: list[str]) -> Sequence[RunMetrics]:
        if self._state_dir is None:
            return ()
        from flowctl.observe.recorded import history_metrics

        try:
            return history_metrics(self._state_dir, self.pipeline.name, last=HISTORY_RUNS, needs=self._needs)
        except FlowctlError as exc:
            warnings.append(f"no baselines for alerts: {exc.message}")
            return ()

    def _log_outcome(
        self,
        metrics: RunMetrics,
        results: Sequence[AlertResult],
        deliveries: Sequence[Delivery],
        warnings: Sequence[str],
    ) -> None:
        if self.log is None:
            return
        try:
            self.log.note("run_metrics", metrics.run_id, metrics.to_dict())
            for r in results:
                if r.fired:
                    self.log.note("alert_fired", metrics.run_id, r.to_dict())
            for d in deliveries:
                name = "notify_sent" if d.ok else "notify_failed"
                fields = {"notifier": d.notifier, "alert": d.alert, "detail": d.detail, "tries": d.tries}
                self.log.note(name, metrics.run_id, fields)
            for text in warnings:
                self.log.note("warning", metrics.run_id, {"message": text})
        except (OSError, ValueError):
            pass  # the log is gone (closed stream, full disk): the warnings are printed anyway

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


__all__ = ["HISTORY_RUNS", "MUTE_ENV", "RunObserver", "RunReport", "muted"]
