"""``flowctl runs [PIPELINE]``: recent runs, newest first, from the state store."""

from __future__ import annotations

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format
from flowctl.cli._history import format_option, state_dir_option


@app.command()
def runs(
    pipeline: str = typer.Argument(None, help="A pipeline file or name (default: every pipeline)."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs to list."),
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
    from flowctl.state.elsewhere import elsewhere_lines, runs_elsewhere
    from flowctl.state.location import shown_path
    from flowctl.state.views import recent_runs, state_dir_for

    chosen = pick_format(fmt, as_json, ("text", "json"))
    folder = state_dir_for(state_dir, pipeline)
    found = recent_runs(folder, pipeline, limit=limit)
    if not found:
        command = ["runs", *([pipeline] if pipeline else [])]
        other = elsewhere_lines(runs_elsewhere(folder, pipeline), command)
        if chosen == "json":
            emit_json([])
            sys.stderr.write("".join(f"flowctl: note: {line}\n" for line in other))
            return 0
        print(f"no runs{f' of {pipeline}' if pipeline else ''} recorded in {shown_path(folder)}")
        sys.stdout.write("".join(line + "\n" for line in other))
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
