"""``flowctl versions``: the releases that changed a pipeline, one line each."""

from __future__ import annotations

import json
import os
import sys

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format


@app.command()
def versions(
    pipeline: str = typer.Argument(..., help="The pipeline file."),
    tag_pattern: str = typer.Option(
        None, "--tag-pattern", help="Release tags to look for, with {name} and {version}."
    ),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
    as_json: bool = json_option(),
) -> int:
    """List the releases (tags <name>/vX.Y.Z, else vX.Y.Z) in which the pipeline changed.

    Each line shows the tag, the date of the tagged commit and what changed since the release
    before. Run one with `flowctl run PIPELINE --ref TAG`.

    Example: flowctl versions pipelines/etl.yaml
    """
    from flowctl.diff.release import release_history
    from flowctl.diff.render import one_line
    from flowctl.spec import require_pipeline_file

    require_pipeline_file(pipeline)
    chosen = pick_format(fmt, as_json, ("text", "json"))
    entries = release_history(os.getcwd(), pipeline, tag_format=tag_pattern)
    if chosen == "json":
        doc = [
            {
                "tag": e.release.tag,
                "version": str(e.release.version),
                "commit": e.release.commit,
                "date": e.date,
                "summary": one_line(e.diff) if e.diff else None,
                "error": e.error,
            }
            for e in entries
        ]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    if not entries:
        sys.stdout.write(f"no releases of {pipeline} yet (create one with flowctl release {pipeline} --bump minor)\n")
        return 0
    width = max(len(e.release.tag) for e in entries)
    for e in reversed(entries):
        what = one_line(e.diff) if e.diff else f"invalid pipeline at this release: {e.error}"
        sys.stdout.write(f"{e.release.tag:<{width}}  {e.date}  {e.release.commit[:7]}  {what}\n")
    return 0
