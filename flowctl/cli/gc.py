"""``flowctl gc``: prune old runs, their logs and the worktrees ``run --ref`` kept from the state folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format
from flowctl.cli._history import format_option, state_dir_option
from flowctl.limits import MAX_RUNS_LISTED

if TYPE_CHECKING:
    from pathlib import Path

    from flowctl.diff.worktree import KeptWorktree


@app.command()
def gc(
    pipeline: str = typer.Argument(None, help="Only runs of this pipeline (file or name)."),
    keep: int = typer.Option(None, "--keep", min=0, max=MAX_RUNS_LISTED, metavar="N", help="Keep the N newest runs of each pipeline."),
    older_than: str = typer.Option(None, "--older-than", metavar="DURATION", help="Prune runs started longer ago, e.g. 30d."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be pruned; change nothing."),
    state_dir: str = state_dir_option(),
    fmt: str = format_option(),
    as_json: bool = json_option(),
) -> int:
    """Prune finished runs (records and log folders) beyond --keep N or older than --older-than.

    Runs still running are never pruned. The worktrees `run --ref` kept because their steps
    wrote files there (<state>/worktrees/) are pruned by the same rules, per pipeline, unless
    the pipeline is running.

    Example: flowctl gc --keep 50 --older-than 30d
    """
    from flowctl.cli._history import emit_json, stamp
    from flowctl.spec.durations import duration_option
    from flowctl.state.views import collect_garbage, state_dir_for

    chosen = pick_format(fmt, as_json, ("text", "json"))
    age = None if older_than is None else duration_option("--older-than", older_than)
    folder = state_dir_for(state_dir, pipeline)
    result = collect_garbage(folder, keep=keep, older_than=age, pipeline=pipeline, dry_run=dry_run)
    removed, busy = _collect_worktrees(folder, keep, age, pipeline, dry_run)
    if chosen == "json":
        emit_json({"dry_run": dry_run, "runs": [r.run_id for r in result.runs], "log_dirs": list(result.log_dirs),
                   "bytes_freed": result.bytes_freed + sum(w.size for w in removed),
                   "worktrees": [w.path for w in removed], "worktrees_in_use": [w.path for w in busy]})
        return 0
    verb = "would prune" if dry_run else "pruned"
    for run in result.runs:
        print(f"{verb} {run.run_id} ({run.pipeline}, {stamp(run.started_at)}, {run.status})")
    for w in removed:
        print(f"{verb} worktree {w.path} ({w.pipeline} at {w.ref}, {stamp(w.created)}, {w.size / 1024:.1f} KiB "
              "the run wrote)")
    for w in busy:
        print(f"kept worktree {w.path}: {w.pipeline} is running")
    print(f"{verb} {len(result.runs)} run(s) and {len(result.log_dirs)} log folder(s), "
          f"{result.bytes_freed / 1024:.1f} KiB")
    if removed:
        print(f"{verb} {len(removed)} worktree(s) of `run --ref`, {sum(w.size for w in removed) / 1024:.1f} KiB")
    return 0


def _collect_worktrees(
    folder: Path, keep: int | None, age: float | None, pipeline: str | None, dry_run: bool
) -> tuple[list[KeptWorktree], list[KeptWorktree]]:
    """The worktree part of gc (diff.worktree): the same rules as runs; a running pipeline's
    worktrees stay (its lock says it runs)."""
    import os

    from flowctl.diff.worktree import collect_worktrees
    from flowctl.errors import FlowctlError
    from flowctl.state.lock import is_locked

    name = pipeline
    if pipeline is not None and os.path.isfile(pipeline):
        from flowctl.spec import load_pipeline

        try:
            name = load_pipeline(pipeline).name
        except FlowctlError:
            name = None  # runs are matched by file; worktrees by name: an unreadable file matches none
    if pipeline is not None and name is None:
        return [], []
    return collect_worktrees(folder / "worktrees", keep=keep, older_than=age, pipeline=name, dry_run=dry_run,
                             in_use=lambda n: is_locked(folder, n))
