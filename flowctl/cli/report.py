"""``flowctl report [RUN_ID|latest]`` and ``flowctl report --history PIPELINE``: HTML pages.

Thin: pick the run (or the pipeline), call ``flowctl.report``, write the file, say where it is.
``write_after_run`` is what ``flowctl run --report FILE`` calls once the summary is printed: a
report that cannot be made is a warning there, never a change of the run's exit code.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format
from flowctl.cli._history import format_option, pipeline_option, state_dir_option

if TYPE_CHECKING:
    from flowctl.spec.model import Pipeline


@app.command()
def report(
    run_id: str = typer.Argument(
        "latest", metavar="[RUN_ID|latest]", help="A run id (or a unique prefix), or latest (the default)."
    ),
    output: str | None = typer.Option(
        None, "--output", "-o", metavar="FILE",
        help="Where to write the page (default: report.html, or history.html with --history; - for stdout).",
    ),
    baseline: str | None = typer.Option(
        None, "--baseline", metavar="last-success|RUN_ID|median:N",
        help="What each step's duration is compared with (default: median:10, the median of its last 10 successful runs).",
    ),
    history: str | None = typer.Option(
        None, "--history", metavar="PIPELINE",
        help="A page of the pipeline's recent runs (its file or name) instead of one run's.",
    ),
    last: int | None = typer.Option(
        None, "--last", min=1, metavar="N", help="With --history: how many recent runs (default 50)."
    ),
    timestamp: bool = typer.Option(
        False, "--timestamp", help="Say in the page when it was made (without it the same run gives the same bytes)."
    ),
    pipeline: str | None = pipeline_option(),
    state_dir: str | None = state_dir_option(),
    fmt: str = format_option(),
    as_json: bool = json_option(),
) -> int:
    """Write one self-contained HTML page about a run: a timeline of every attempt, the
    dependency graph, durations against a baseline, failures with their log tails, metrics.
    With --history PIPELINE: run durations and outcomes, per-step p50/p95 trends and the
    flakiest steps. The page works offline and loads nothing.

    Example: flowctl report latest -o report.html --baseline median:5

    Example: flowctl report latest~1 --pipeline pipelines/etl.yaml -o previous.html
    """
    import json
    import time

    from flowctl.errors import UsageError
    from flowctl.report import history_html, parse_baseline, run_report_html, write_html
    from flowctl.state.views import state_dir_for

    chosen = pick_format(fmt, as_json, ("text", "json"))
    made = time.time() if timestamp else None
    if history is not None:
        if run_id != "latest" or baseline is not None or pipeline is not None:
            raise UsageError("--history makes a page of many runs: give no RUN_ID, --baseline or --pipeline with it")
        from flowctl.cli.stats import (
            _pipeline_and_state,  # the same pipeline and folder as stats
        )

        name, _, needs, folder = _pipeline_and_state(history, state_dir)
        page, html = history_html(folder, name, last=last or 50, needs=needs, generated_at=made)
        target, what = output or "history.html", {"pipeline": page.pipeline, "runs": len(page.runs)}
    else:
        if last is not None:
            raise UsageError("--last chooses the runs of a --history page", hint="add --history PIPELINE")
        spec = parse_baseline(baseline)
        one, html = run_report_html(
            state_dir_for(state_dir, pipeline), run_id, baseline=spec, generated_at=made, of_pipeline=pipeline
        )
        target, what = output or "report.html", {"run_id": one.header.run_id, "pipeline": one.header.pipeline}
    if target == "-":
        sys.stdout.write(html)
        return 0
    size = write_html(target, html)
    if chosen == "json":
        json.dump({**what, "path": target, "bytes": size}, sys.stdout, sort_keys=True)
        sys.stdout.write("\n")
    else:
        about = f"run {what['run_id']}" if "run_id" in what else f"the last {what['runs']} runs"
        print(f"Wrote {target} ({size / 1024:.0f} KB): {what['pipeline']}, {about}")
    return 0


def write_after_run(path: str, *, state_dir: str, run_id: str, pipeline: Pipeline) -> None:
    """``run --report FILE``: write the run's page; any failure is a warning on stderr."""
    from flowctl.errors import FlowctlError

    try:
        from flowctl.report import run_report_html, write_html

        _, html = run_report_html(state_dir, run_id, pipeline=pipeline)
        write_html(path, html, option="--report")
    except FlowctlError as exc:
        print(f"flowctl: warning: no report written: {exc.message}", file=sys.stderr)
        return
    except Exception as exc:
        print(f"flowctl: warning: no report written to {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return
    print(f"Report: {path}", flush=True)


__all__ = ["report", "write_after_run"]
