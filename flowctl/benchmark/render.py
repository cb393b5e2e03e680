"""Text and Markdown forms of a benchmark result, and of its progress: lines, never printed here.

The text report reads like hyperfine's (mean ± sd, median, min, max) followed by k6's pooled
percentiles, a table of the executions, the thresholds and the comparison. Markdown carries the
same figures as tables, for a pull request or a CI summary. Injected faults appear only when the
runs recorded some (``bench --chaos``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from flowctl.benchmark.compare import NO_CHANGE, Comparison, Delta
from flowctl.benchmark.executions import BenchEvent, ExecutionFinished
from flowctl.benchmark.figures import FIGURES, RunSample, Summary
from flowctl.benchmark.request import BenchPlan
from flowctl.benchmark.result import BenchResult
from flowctl.benchmark.thresholds import ThresholdResult
from flowctl.spec.alerts import AlertRule, Subject
from flowctl.spec.durations import format_duration


def value(unit: str, number: float | None) -> str:
    """A figure's value in its unit (``-`` when there is none)."""
    if number is None:
        return "-"
    if unit == "time":
        return format_duration(number, precise=True)
    if unit == "rate":
        return f"{number * 100:.1f}%"
    if unit == "per_second":
        return f"{number:.1f} steps/s"
    if unit == "count":
        return f"{number:.0f}" if number == int(number) else f"{number:.1f}"
    return f"{number:.2f}"


def _mean_sd(unit: str, summary: Summary) -> str:
    if summary.sd is None:
        return value(unit, summary.mean)
    return f"{value(unit, summary.mean)} ± {value(unit, summary.sd)}"


def _size(size: int) -> str:
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GB"


def heading(plan: BenchPlan) -> list[str]:
    """What is benchmarked, where, and how (printed before the executions start)."""
    r = plan.request
    env = plan.environment
    pipe = plan.prepared.pipeline
    warm = f" after {r.warmup} warm-up" if r.warmup else ""
    git = "no git"
    if env.git_commit:
        git = f"git {env.git_commit[:12]}" + (" (uncommitted changes)" if env.git_dirty else "")
    cpus = f"{env.cpus} CPUs" + (f" ({env.usable_cpus} usable)" if env.usable_cpus != env.cpus else "")
    ws = plan.workspace
    what = f"the files git sees in {ws.root}" if ws.kind == "git" else f"the folder {ws.root}"
    lines = [
        f"Benchmark of {pipe.name} ({r.pipeline}): {r.runs} run{'s' * (r.runs != 1)}{warm}, "
        f"{r.parallel} at once, -j {plan.concurrency} in each",
        f"Environment: {cpus}, {env.python}, flowctl {env.flowctl}, {git}, executor {env.executor}, {env.platform}",
        f"Working copy per execution: {len(ws.files)} file{'s' * (len(ws.files) != 1)}, {_size(ws.size)} ({what})",
    ]
    if plan.overrides:
        lines.append("Parameters: " + " ".join(f"{k}={v}" for k, v in plan.overrides.items()))
    return lines


def progress_line(event: BenchEvent) -> str:
    """One plain, timestamped line per execution that starts or ends."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event.at))
    phase = "warm-up" if event.warmup else "run"
    if not isinstance(event, ExecutionFinished):
        return f"{stamp} START {phase} {event.index}/{event.total}"
    outcome = "ok" if event.exit_code == 0 else f"exit {event.exit_code}"
    return f"{stamp} DONE  {phase} {event.index}/{event.total} {format_duration(event.wall_seconds, precise=True)} {outcome}"


def _figure_lines(result: BenchResult) -> list[str]:
    a = result.aggregate
    per = a.per_run
    wall = a.wall
    t = "time"
    critical = _critical(result.samples)
    path = f", {value(t, critical)} on average" if critical is not None else ""
    return [
        f"  wall time     {_mean_sd(t, wall)}   median {value(t, wall.median)}   min {value(t, wall.min)}   max {value(t, wall.max)}",
        f"  throughput    {value('per_second', a.throughput)} over {value(t, a.busy_seconds)} of executions"
        f" (per run {_mean_sd('per_second', per['throughput'])})",
        f"  step latency  p50 {value(t, a.latency.p50)}   p95 {value(t, a.latency.p95)}   p99 {value(t, a.latency.p99)}"
        f"   ({a.latency.count} steps, ready to finished)",
        f"  queue wait    p50 {value(t, a.queue_wait.p50)}   p99 {value(t, a.queue_wait.p99)}",
        f"  queue depth   max {a.queue_depth_max}   mean {value('number', a.queue_depth_mean)}",
        f"  errors        {value('rate', a.error_rate)} of {a.attempts} attempts failed, "
        f"{a.failed_runs}/{a.runs} runs failed, {a.retries} retries"
        + (f", {a.injected_faults} injected faults (not errors)" if a.injected_faults else ""),
        f"  overhead      {_mean_sd(t, a.overhead)} (wall time minus the critical path{path})",
    ]


def _critical(samples: Sequence[RunSample]) -> float | None:
    paths = [s.metrics.critical_path_seconds for s in samples if s.metrics.critical_path_seconds is not None]
    return sum(paths) / len(paths) if paths else None


_RUN_COLUMNS = ("run", "run id", "status", "wall", "steps/s", "lat p99", "wait p99", "max q", "errors", "retries", "overhead")


def _run_cells(sample: RunSample) -> list[str]:
    m = sample.metrics
    return [
        str(sample.index),
        m.run_id,
        m.status.value,
        value("time", sample.wall_seconds),
        value("number", sample.throughput) if sample.throughput is not None else "-",
        value("time", m.latency.p99),
        value("time", m.queue_wait.p99),
        str(m.max_queue_depth),
        value("rate", m.error_rate),
        str(m.retries),
        value("time", sample.overhead),
    ]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    right = {i for i, h in enumerate(header) if h not in ("run id", "status", "figure", "threshold", "result")}

    def line(cells: Sequence[str]) -> str:
        return indent + "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=False))).rstrip()

    return [line(header), *(line(r) for r in rows)]


def _threshold_text(t: ThresholdResult, width: int = 0) -> str:
    unit = _unit_of(t.rule)
    shown = f"{t.rule.key} = {value(unit, t.value)}"
    if t.baseline is not None and t.limit is not None:
        shown += f", limit {value(unit, t.limit)} ({t.rule.baseline_factor:g} x baseline {value(unit, t.baseline)})"
    if t.reason:
        shown = t.reason
    return f"  {'PASS' if t.passed else 'FAIL'}  {t.rule.text:<{width}}   ({shown})"


def _unit_of(rule: AlertRule) -> str:
    if rule.subject is Subject.THROUGHPUT:
        return "per_second"
    kind = rule.subject.kind
    return kind if kind in ("rate", "time", "count") else "number"


def _delta_cells(d: Delta) -> list[str]:
    unit = d.figure.unit
    change = d.change
    pct = f" ({d.ratio * 100 - 100:+.1f}%)" if d.ratio is not None else ""
    shown_change = "-" if change is None else f"{'+' if change >= 0 else '-'}{value(unit, abs(change))}{pct}"
    verdict = "~ no change" if d.verdict == NO_CHANGE else d.verdict
    band = "-" if d.band is None else f"±{value(unit, d.band)}"
    return [d.figure.label, _mean_sd(unit, d.baseline), _mean_sd(unit, d.current), shown_change, band, verdict]


def comparison_lines(c: Comparison) -> list[str]:
    """The ``--compare`` table, the overall verdict and the notes."""
    b = c.baseline
    lines = [
        f"Compared with {b.path} ({b.pipeline}, {b.started_at}, {b.runs} runs);"
        " noise band: 2 sd, at least 2% and 1 ms:"
    ]
    rows = [_delta_cells(d) for d in c.deltas]
    lines += _table(("figure", "baseline", "now", "change", "band", "verdict"), rows)
    lines.append(f"  overall: {'~ no change' if c.verdict == NO_CHANGE else c.verdict}")
    lines += [f"  note: {note}" for note in c.notes]
    return lines


def _kept_lines(result: BenchResult) -> list[str]:
    if result.kept is None:
        return []
    first = result.samples[0].state_dir if result.samples else None
    lines = [f"State of each execution kept in {result.kept} (run-NNN/state, run-NNN/output.log)"]
    if first:
        lines.append(f"  e.g. flowctl show latest --state-dir {first}")
    return lines


def text_report(result: BenchResult) -> list[str]:
    """The report ``flowctl bench`` prints (after ``heading`` and the progress)."""
    lines = ["", *_figure_lines(result), ""]
    lines += _table(_RUN_COLUMNS, [_run_cells(s) for s in result.samples])
    if result.thresholds:
        width = max(len(t.rule.text) for t in result.thresholds)
        lines += ["", "Thresholds:", *(_threshold_text(t, width) for t in result.thresholds)]
    if result.comparison is not None:
        lines += ["", *comparison_lines(result.comparison)]
    kept = _kept_lines(result)
    if kept:
        lines += ["", *kept]
    return lines


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [_md_row(header), _md_row(["---"] * len(header)), *(_md_row(r) for r in rows)]


def markdown_report(result: BenchResult) -> list[str]:
    """The same figures as Markdown tables."""
    plan = result.plan
    a = result.aggregate
    lines = [f"## Benchmark of `{plan.prepared.pipeline.name}`", ""]
    lines += [f"{line}  " for line in heading(plan)[1:]]
    lines += [
        f"{plan.request.runs} runs, {plan.request.parallel} at once, -j {plan.concurrency} in each",
        "",
        *_md_table(
            ("figure", "mean ± sd", "median", "min", "max"),
            [
                [f.label, _mean_sd(f.unit, s), value(f.unit, s.median), value(f.unit, s.min), value(f.unit, s.max)]
                for f, s in ((f, a.per_run[f.key]) for f in FIGURES)
            ],
        ),
        "",
        *_md_table(
            ("pooled over every step", "p50", "p95", "p99", "max"),
            [
                ["step latency", *(value("time", getattr(a.latency, q)) for q in ("p50", "p95", "p99", "max"))],
                ["queue wait", *(value("time", getattr(a.queue_wait, q)) for q in ("p50", "p95", "p99", "max"))],
            ],
        ),
        "",
        f"Throughput {value('per_second', a.throughput)} over {value('time', a.busy_seconds)} of executions; "
        f"error rate {value('rate', a.error_rate)}; {a.failed_runs}/{a.runs} runs failed; {a.retries} retries; "
        + (f"{a.injected_faults} injected faults; " if a.injected_faults else "") +
        f"queue depth max {a.queue_depth_max}, mean {value('number', a.queue_depth_mean)}.",
        "",
        "### Runs",
        "",
        *_md_table(_RUN_COLUMNS, [_run_cells(s) for s in result.samples]),
    ]
    if result.thresholds:
        rows = [
            ["PASS" if t.passed else "FAIL", f"`{t.rule.text}`", t.reason or value(_unit_of(t.rule), t.value)]
            for t in result.thresholds
        ]
        lines += ["", "### Thresholds", "", *_md_table(("result", "threshold", "value"), rows)]
    c = result.comparison
    if c is not None:
        lines += [
            "",
            f"### Compared with `{os.path.basename(c.baseline.path)}` ({c.baseline.started_at}): "
            f"{'no change' if c.verdict == NO_CHANGE else c.verdict}",
            "",
            *_md_table(("figure", "baseline", "now", "change", "band (2 sd)", "verdict"), [_delta_cells(d) for d in c.deltas]),
        ]
        lines += [f"- note: {note}" for note in c.notes]
    return lines


__all__ = ["comparison_lines", "heading", "markdown_report", "progress_line", "text_report", "value"]
