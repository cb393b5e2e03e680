"""The report model as one self-contained HTML file: Jinja2 templates, inline SVG, one ``<style>``.

Jinja2 is imported here, lazily (``flowctl --help`` never loads it), with autoescaping on for
every template: every piece of user text (step ids, descriptions, parameter values, log lines,
errors) reaches the page HTML-escaped. The data behind the page is embedded once, as
``<script type="application/json" id="flowctl-data">``, with ``<``, ``>`` and ``&`` written as
JSON ``\\u`` escapes so no text can close the element. A Content-Security-Policy meta lets the
page load nothing from anywhere. The same model gives the same bytes: sorted keys, rounded
coordinates, UTC times, and no generation time unless one is given (``--timestamp``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from flowctl.observe.trends import SLOWER_FACTOR
from flowctl.report import layout
from flowctl.report.model import HistoryReport, RunReport, StepView

if TYPE_CHECKING:
    import jinja2

    from flowctl.state.items import ItemRecord

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def stamp(epoch: float | None) -> str:
    """UTC to the second (a report reads the same in every time zone)."""
    return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def embed_json(data: object) -> str:
    """``data`` as JSON that is safe inside a ``<script>`` element (sorted keys, no ``<``)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    for raw, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("flowctl.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(dur=layout.dur, stamp=stamp, pct=_pct, n=layout.coord, slug=layout.slug)
    return env


def _render(template: str, context: Mapping[str, object]) -> str:
    from markupsafe import Markup

    env = _environment()
    data = context["data"]
    return env.get_template(template).render(
        # Both are markup on purpose: the policy is a constant (written as the issue gives it),
        # the data was made safe for a <script> element by embed_json.
        {**context, "csp": Markup(CSP), "data": Markup(embed_json(data))}
    )


def _compact(value: object) -> object:
    """``value`` for the embedded data: fields that are None or empty left out, times and
    durations to the millisecond (a 100-step run's data shrinks by a third)."""
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items() if v is not None and v != "" and v != () and v != []}
    if isinstance(value, (list, tuple)):
        return [_compact(v) for v in value]
    if isinstance(value, float):
        return round(value, 3)
    return value


#: Per-step figures the steps in the data already hold.
_PER_STEP = ("step_duration", "step_attempts")


def _item_data(r: ItemRecord) -> dict[str, object]:
    """What the page shows of an item (its key, how it ended), not its value or log."""
    return {"key": r.key, "status": r.status, "attempts": r.attempts, "exit_code": r.exit_code,
            "started_at": r.started_at, "finished_at": r.finished_at, "duration": r.duration}


def _step_data(s: StepView) -> object:
    """A step for the data; a foreach step's items as aggregates plus the items the page shows
    (a 10,000-item step is a few hundred bytes here)."""
    data = dataclasses.asdict(dataclasses.replace(s, log_tail=(), items=None))
    if s.items is not None:
        summary = s.items.summary
        data["items"] = {
            "counts": dict(sorted(summary.counts.items())), "started_at": s.items.started_at,
            "finished_at": s.items.finished_at, "items_per_second": summary.items_per_second,
            "error_rate": summary.error_rate, "p50": summary.p50, "p95": summary.p95, "p99": summary.p99,
            "slowest": [_item_data(r) for r in summary.slowest], "failed": [_item_data(r) for r in summary.failed],
        }
    return _compact(data)


def run_data(report: RunReport) -> dict[str, object]:
    """What ``#flowctl-data`` holds for a run: the model, without the page's geometry. Log tails
    are the page's own text (the failures section) and are not repeated here."""
    metrics = {k: v for k, v in report.metrics.to_dict().items() if k not in _PER_STEP}
    return {
        "kind": "run",
        "header": _compact(dataclasses.asdict(report.header)),
        "steps": [_step_data(s) for s in report.steps],
        "metrics": _compact(metrics),
        "baseline": report.baseline,
        "slower_factor": SLOWER_FACTOR,
        "levels": [list(level) for level in report.levels],
        "failures": list(report.failures),
        "notes": list(report.notes),
        "generated_at": report.generated_at,
    }


def render_run(report: RunReport) -> str:
    """The HTML page of one run."""
    from flowctl.observe.report import metrics_lines

    metrics = [_split(line) for line in metrics_lines(report.metrics)]
    by_id = {s.step: s for s in report.steps}
    return _render(
        "run.html.j2",
        {
            "r": report,
            "h": report.header,
            "failures": [by_id[s] for s in report.failures],
            "gantt": layout.gantt(report),
            "dag": layout.dag(report),
            "comparisons": layout.comparisons(report),
            "metrics": metrics,
            "slower_factor": SLOWER_FACTOR,
            "replays": replay_commands(report),
            "data": run_data(report),
        },
    )


def replay_commands(report: RunReport) -> list[tuple[str, str]]:
    """Per step with dead-lettered items, the ``flowctl dlq replay`` command to type."""
    import shlex

    poisoned = {d.step for d in report.dead_letters if d.status == "poisoned"}
    run = shlex.quote(report.header.run_id)
    return [(s, f"flowctl dlq replay --run {run} --step {shlex.quote(s)} --all{' --force' * (s in poisoned)}")
            for s in sorted({d.step for d in report.dead_letters})]


def _split(line: str) -> tuple[str, str]:
    """``metrics_lines`` writes ``label   value``: the label, then the value."""
    label, _, value = line.partition("  ")
    return label.strip(), value.strip()


def history_data(history: HistoryReport) -> dict[str, object]:
    return {
        "kind": "history",
        "pipeline": history.pipeline,
        "runs": [_compact(dataclasses.asdict(r)) for r in history.runs],
        "stats": history.stats.to_dict(),
        "steps": [_compact(dataclasses.asdict(s)) for s in history.steps],
        "window": history.window,
        "generated_at": history.generated_at,
    }


def render_history(history: HistoryReport) -> str:
    """The history page of one pipeline."""
    count = len(history.runs)
    return _render(
        "history.html.j2",
        {
            "hr": history,
            "chart": layout.runs_chart(history),
            "trends": [(s, layout.trend(s, count)) for s in history.steps],
            "flakiest": history.flakiest[:10],
            "data": history_data(history),
        },
    )


__all__ = ["CSP", "embed_json", "history_data", "render_history", "render_run", "run_data", "stamp"]
