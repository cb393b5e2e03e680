"""``flowctl runs [PIPELINE]``: recent runs, newest first, from the state store."""

from __future__ import annotations

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format
from flowctl.cli._history import format_option, state_dir_option
from flowctl.limits import MAX_RUNS_LISTED


@app.command()
def runs(
    pipeline: str = typer.Argument(None, help="A pipeline file or name (default: every pipeline)."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=MAX_RUNS_LISTED, help="How many runs to list."),
    state_dir: str = state_dir_option(),
    fmt: str = format_option(),
    as_json: bool = json_option(),
) -> int:
    """List recent runs: id, pipeline, start, duration, status and step counts.

    With no runs in the state folder, says where under the project runs are recorded instead.

    Example: flowctl runs pipelines/etl.yaml --limit 5
    """
    import sys

    from flowctl.cli._history import counts_text, emit_json, seconds, stamp, table
    from flowctl.state.elsewhere import elsewhere_lines, lost_runs_error, meant_pipeline, runs_elsewhere
    from flowctl.state.location import shown_path
    from flowctl.state.views import recent_runs, state_dir_for

    chosen = pick_format(fmt, as_json, ("text", "json"))
    folder = state_dir_for(state_dir, pipeline)
    found = recent_runs(folder, pipeline, limit=limit)
    if not found:
        lost = lost_runs_error(folder) if not pipeline else None
        if lost is not None:  # never "no runs recorded" when the database lost them
            raise lost
        command = ["runs", *([pipeline] if pipeline else [])]
        other = elsewhere_lines(runs_elsewhere(folder, pipeline), command)
        if chosen == "json":  # the notes go to stderr: stdout stays the JSON list
            emit_json([])
            sys.stderr.write("".join(f"flowctl: note: {line}\n" for line in other))
            return 0
        meant = meant_pipeline(folder, pipeline)
        print(f"no runs{f' of {pipeline}' if pipeline else ''} recorded in {shown_path(folder)}")
        sys.stdout.write("".join(line + "\n" for line in ([meant] if meant else other)))
        return 0
    if chosen == "json":
        emit_json(list(found))
        return 0
    rows = [
        [r.run_id, r.pipeline, stamp(r.started_at), seconds(r.duration), r.status, counts_text(r.counts)]
        for r in found
    ]
    table(["RUN", "PIPELINE", "STARTED", "DURATION", "STATUS", "STEPS"], rows)
    return 0
