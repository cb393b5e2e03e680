"""``flowctl gc``: prune old runs and their logs from the state folder."""

from __future__ import annotations

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format
from flowctl.cli._history import format_option, state_dir_option


@app.command()
def gc(
    pipeline: str = typer.Argument(None, help="Only runs of this pipeline (file or name)."),
    keep: int = typer.Option(None, "--keep", min=0, metavar="N", help="Keep the N newest runs of each pipeline."),
    older_than: str = typer.Option(None, "--older-than", metavar="DURATION", help="Prune runs started longer ago, e.g. 30d."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be pruned; change nothing."),
    state_dir: str = state_dir_option(),
    fmt: str = format_option(),
    as_json: bool = json_option(),
) -> int:
    """Prune finished runs (records and log folders) beyond --keep N or older than --older-than.

    Runs still running are never pruned.

    Example: flowctl gc --keep 50 --older-than 30d
    """
    from flowctl.cli._history import emit_json, stamp
    from flowctl.spec.durations import duration_option
    from flowctl.state.views import collect_garbage, state_dir_for

    chosen = pick_format(fmt, as_json, ("text", "json"))
    age = None if older_than is None else duration_option("--older-than", older_than)
    folder = state_dir_for(state_dir, pipeline)
    result = collect_garbage(folder, keep=keep, older_than=age, pipeline=pipeline, dry_run=dry_run)
    if chosen == "json":
        emit_json({"dry_run": dry_run, "runs": [r.run_id for r in result.runs], "log_dirs": list(result.log_dirs),
                   "bytes_freed": result.bytes_freed})
        return 0
    verb = "would prune" if dry_run else "pruned"
    for run in result.runs:
        print(f"{verb} {run.run_id} ({run.pipeline}, {stamp(run.started_at)}, {run.status})")
    print(f"{verb} {len(result.runs)} run(s) and {len(result.log_dirs)} log folder(s), "
          f"{result.bytes_freed / 1024:.1f} KiB")
    return 0
