"""``flowctl stats``: run durations, success rate, lateness and per-step figures across runs.

The steps shown are those of the pipeline file as it is now (given, or the one the newest run
recorded); steps only older runs had are listed apart. With no runs in the state folder, says
where under the project runs are recorded instead.
"""

from __future__ import annotations

import json
import sys
import time

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format, stdout_is_tty
from flowctl.cli._history import state_dir_option

FORMATS = ("text", "json")


@app.command()
def stats(
    pipeline: str = typer.Argument(..., help="The pipeline file (or the name its runs were recorded under)."),
    last: int | None = typer.Option(None, "--last", min=1, metavar="N", help="The N most recent runs (default 50)."),
    since: str | None = typer.Option(None, "--since", metavar="DURATION", help="Runs started within this long, e.g. 7d."),
    state_dir: str | None = state_dir_option(),
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
    name, steps, needs, folder = _pipeline_and_state(pipeline, state_dir)
    limit = last if last is not None else (None if since is not None else 50)
    runs = history_metrics(folder, name, last=limit, since=start, needs=needs)
    summary = pipeline_stats(name, runs, steps)
    if chosen == "json":
        json.dump(summary.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif runs:
        sys.stdout.write("\n".join(stats_lines(summary, charts=stdout_is_tty())) + "\n")
    if not runs:
        _say_where(name, pipeline, folder, since, json_out=chosen == "json")
    return 0


def _say_where(name: str, pipeline: str, folder: str, since: str | None, *, json_out: bool) -> None:
    """No runs chosen: say where we looked and, when this folder has none of the pipeline's at
    all, where under the project its runs are recorded."""
    from flowctl.state.elsewhere import elsewhere_lines, runs_elsewhere
    from flowctl.state.location import shown_path
    from flowctl.state.views import recent_runs

    lines = [] if json_out else [
        f"{name}: no runs {f'in the last {since} ' if since else ''}recorded in {shown_path(folder)}"
    ]
    if not recent_runs(folder, name, limit=1):
        lines += elsewhere_lines(runs_elsewhere(folder, name), ["stats", pipeline])
    out = sys.stderr if json_out else sys.stdout
    out.write("".join(("flowctl: note: " if json_out else "") + line + "\n" for line in lines))


def _pipeline_and_state(
    pipeline: str, state_dir: str | None
) -> tuple[str, tuple[str, ...] | None, dict[str, tuple[str, ...]], str]:
    """The recorded name, the current step ids (None when the definition is unknown), the
    ``needs`` edges and the state folder, for a pipeline file or a bare name (whose file is the
    one its newest run recorded, when that is still there and valid)."""
    import os

    from flowctl.cli._common import load
    from flowctl.state.views import recent_runs, state_dir_for

    if os.path.isfile(pipeline):
        pipe = load(pipeline)
        needs = {sid: step.needs for sid, step in pipe.steps.items()}
        return pipe.name, tuple(pipe.steps), needs, str(state_dir_for(state_dir, pipeline))
    folder = str(state_dir_for(state_dir, None))
    newest = recent_runs(folder, pipeline, limit=1)
    if newest:
        from flowctl.observe.recorded import needs_of

        recorded = needs_of(newest[0].pipeline_path)  # {} when the file is gone or invalid
        if recorded:
            return pipeline, tuple(recorded), dict(recorded), folder
    return pipeline, None, {}, folder
