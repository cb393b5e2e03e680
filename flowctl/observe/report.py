"""Text forms of run metrics, cross-run stats and alert results, for the CLI to print.

Returns lines; never prints. ``charts=True`` (a terminal) adds a sparkline of run durations and
bars for step times; without it the lines stay plain and stable for logs and pipes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from flowctl.spec.durations import format_duration

if TYPE_CHECKING:
    from flowctl.observe.alerts import AlertResult, Delivery
    from flowctl.observe.metrics import Distribution, RunMetrics
    from flowctl.observe.trends import PipelineStats


def _d(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _dist(dist: Distribution, *quantiles: str) -> str:
    return "  ".join(f"{q} {_d(getattr(dist, q))}" for q in quantiles)


#: The run summary shows the metrics block only where the figures say something (issue 13:
#: "throughput 14345.6 steps/min" for a 2-step run is noise): with ``-v``, when more than this
#: many steps ran an attempt, or when the run took longer than this. ``flowctl show`` always does.
METRICS_MIN_STEPS = 10
METRICS_MIN_SECONDS = 30.0


def metrics_wanted(m: RunMetrics, *, verbose: bool) -> bool:
    """Whether the end of a run shows the metrics block (see ``METRICS_MIN_STEPS``)."""
    return verbose or m.steps_executed > METRICS_MIN_STEPS or m.wall_seconds > METRICS_MIN_SECONDS


def metrics_lines(m: RunMetrics) -> list[str]:
    """The figures of one run (run summary and ``flowctl show``)."""
    rate = "-" if m.throughput_per_minute is None else f"{m.throughput_per_minute:.1f} steps/min"
    lines = [
        f"throughput     {rate} ({m.steps_completed} completed in {_d(m.wall_seconds)})",
        (f"error rate     {m.failed_attempts}/{m.attempts} attempts failed ({_pct(m.error_rate)}), "
        f"{m.steps_failed}/{m.steps_executed} steps failed ({_pct(m.step_error_rate)})"),
        f"step latency   {_dist(m.latency, 'p50', 'p95', 'p99')}  (ready to finished)",
        f"execution      {_dist(m.execution, 'p50', 'p95', 'p99')}",
        f"queue wait     {_dist(m.queue_wait, 'p50', 'p99')}  highest queue depth {m.max_queue_depth}",
    ]
    if m.critical_path and m.critical_path_seconds is not None:
        share = f" ({m.critical_path_seconds / m.wall_seconds * 100:.0f}% of it)" if m.wall_seconds > 0 else ""
        lines.append(
            f"critical path  {_d(m.critical_path_seconds)} of {_d(m.wall_seconds)} wall time{share}: "
            + " -> ".join(m.critical_path)
        )
    if m.lateness is not None:
        lines.append(f"lateness       started {_d(max(0.0, m.lateness))} after the scheduled time")
    if m.worker_attempts:
        lines.append("workers        " + ", ".join(f"{w} {n} attempt{'s' * (n != 1)}" for w, n in m.worker_attempts.items()))
    return lines


def _bar(value: float, top: float, width: int = 20) -> str:
    if top <= 0:
        return ""
    filled = value / top * width
    return "█" * int(filled) + ("▌" if filled - int(filled) >= 0.5 else "")


def stats_lines(stats: PipelineStats, *, charts: bool = False) -> list[str]:
    """``flowctl stats``: run durations, success, lateness, and per-step figures."""
    from flowctl.observe.trends import outcome_strip, sparkline

    if not stats.runs:
        return [f"{stats.pipeline}: no recorded runs"]
    lines = [
        (f"{stats.pipeline}: {stats.runs} run(s), {stats.finished} finished, "
        f"success rate {_pct(stats.success_rate)} ({stats.succeeded}/{stats.finished})"),
        (f"run duration   {_dist(stats.duration, 'p50', 'p99')}  max {_d(stats.duration.max)}"
         f"  (over {stats.duration.count} run(s) that succeeded)"),
    ]
    if charts and stats.durations:
        lines.append(f"               {sparkline(stats.durations)}  (oldest to newest)")
        strip, legend = outcome_strip(stats.statuses)
        lines.append(f"               {strip}  ({legend})")
    if stats.lateness.count:
        lines.append(
            f"lateness       {_dist(stats.lateness, 'p50', 'p99')}  max {_d(stats.lateness.max)}"
            f"  ({stats.lateness.count} scheduled run(s))"
        )
    slowest, failing = stats.slowest, stats.most_failing
    if slowest is not None:
        lines.append(f"slowest step   {slowest.step} (p50 {_d(slowest.p50)})")
    if failing is not None:
        lines.append(
            f"most failing   {failing.step} (failed in {failing.failed_runs} of {failing.runs} runs,"
            f" {_pct(failing.failure_rate)})"
        )
    for s in stats.slower_than_baseline:
        lines.append(f"slower         {s.step}: {_d(s.latest)} in the latest run, baseline {_d(s.baseline)}")
    lines.append("")
    top = max((s.p50 or 0.0 for s in stats.steps), default=0.0)
    width = max([len("step"), *(len(s.step) for s in stats.steps)])
    lines.append(f"{'step':<{width}}  {'runs':>4}  {'p50':>7}  {'p99':>7}  {'failed':>6}  {'latest':>7}")
    for s in stats.steps:
        row = (
            f"{s.step:<{width}}  {s.runs:>4}  {_d(s.p50):>7}  {_d(s.p99):>7}  {s.failed_runs:>6}  {_d(s.latest):>7}"
        )
        if charts and s.p50 is not None:
            row += "  " + _bar(s.p50, top)
        lines.append(row.rstrip())
    if stats.removed:
        lines.append("")
        lines.append("no longer in the pipeline (left out above): " + ", ".join(s.step for s in stats.removed))
    return lines


def alert_lines(results: Sequence[AlertResult]) -> list[str]:
    """One line per alert: FIRING / ok / cannot fire, with the value and what it was held to."""
    lines = []
    for r in results:
        word = "FIRING" if r.fired else ("skipped" if r.reason else "ok")
        detail = _value_text(r)
        description = f" - {r.description}" if r.description else ""
        lines.append(f"{word:<7} {r.rule.text}{description}{detail}")
    return lines


def _value_text(r: AlertResult) -> str:
    if r.reason:
        return f" ({r.reason})"
    if r.value is None or r.threshold is None:
        return ""
    kind = r.rule.subject.kind
    fmt = _d if kind == "time" else (_pct if kind == "rate" else (lambda v: f"{v:g}"))
    base = f", baseline {fmt(r.baseline)}" if r.baseline is not None else ""
    return f" (value {fmt(r.value)}, threshold {fmt(r.threshold)}{base})"


def delivery_lines(deliveries: Sequence[Delivery]) -> list[str]:
    return [
        f"notify {d.notifier}: {'sent' if d.ok else 'FAILED ' + d.detail} ({d.alert})" for d in deliveries
    ]


__all__ = [
    "METRICS_MIN_SECONDS", "METRICS_MIN_STEPS", "alert_lines", "delivery_lines", "metrics_lines", "metrics_wanted",
    "stats_lines",
]
