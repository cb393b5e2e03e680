"""``flowctl stats``: run durations, success rate, lateness and per-step figures across runs."""

from __future__ import annotations

import json
import sys
import time

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format, stdout_is_tty

FORMATS = ("text", "json")


@app.command()
def stats(
    pipeline: str = typer.Argument(..., help="The pipeline file (or the name its runs were recorded under)."),
    last: int | None = typer.Option(None, "--last", min=1, metavar="N", help="The N most recent runs (default 50)."),
    since: str | None = typer.Option(None, "--since", metavar="DURATION", help="Runs started within this long, e.g. 7d."),
    state_dir: str | None = typer.Option(None, "--state-dir", help="The state folder (default: .flowctl beside the file)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
    as_json: bool = json_option(),
) -> int:
    """Show run duration p50/p99, success rate, lateness of scheduled runs, and per step which is
    slowest, which fails most and which got slower than its baseline.

    Example: flowctl stats pipelines/etl.yaml --since 7d
    """
    from flowctl.errors import UsageError
    from flowctl.observe.history import pipeline_stats
    from flowctl.observe.recorded import history_metrics
    from flowctl.observe.report import stats_lines
    from flowctl.spec.durations import duration_option

    chosen = pick_format(fmt, as_json, FORMATS)
    if last is not None and since is not None:
        raise UsageError("--last and --since cannot be combined", hint="pick one way to choose the runs")
    start = None if since is None else time.time() - duration_option("--since", since)
    name, needs, folder = _pipeline_and_state(pipeline, state_dir)
    limit = last if last is not None else (None if since is not None else 50)
    runs = history_metrics(folder, name, last=limit, since=start, needs=needs)
    summary = pipeline_stats(name, runs)
    if chosen == "json":
        json.dump(summary.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n".join(stats_lines(summary, charts=stdout_is_tty())) + "\n")
    return 0


def _pipeline_and_state(pipeline: str, state_dir: str | None) -> tuple[str, dict[str, tuple[str, ...]], str]:
    """The recorded name, the ``needs`` edges and the state folder for a file or a bare name."""
    import os

    from flowctl.cli._common import load
    from flowctl.state.views import state_dir_for

    if os.path.isfile(pipeline):
        pipe = load(pipeline)
        needs = {sid: step.needs for sid, step in pipe.steps.items()}
        return pipe.name, needs, str(state_dir_for(state_dir, pipeline))
    return pipeline, {}, str(state_dir_for(state_dir, None))
