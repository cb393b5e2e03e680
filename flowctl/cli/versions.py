"""``flowctl versions``: the releases that changed a pipeline, one line each."""

from __future__ import annotations

import json
import os
import sys

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format
from flowctl.cli._tags import tag_format_alias, tag_pattern, tag_pattern_option


@app.command()
def versions(
    pipeline: str = typer.Argument(..., help="The pipeline file."),
    pattern: str = tag_pattern_option(),
    tag_format: str = tag_format_alias(),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
    as_json: bool = json_option(),
) -> int:
    """List every release tag at which the pipeline exists, newest first, marking changes.

    Both tag schemes count (<name>/vX.Y.Z per pipeline and repo-wide vX.Y.Z), in the order
    history made them, unless --tag-pattern names one. Each line shows the tag, the date of the
    tagged commit, the commit, `*` where the pipeline changed since the release before, and what
    changed ("new pipeline" when it was absent at the release before). Run one with
    `flowctl run PIPELINE --ref TAG`.

    Example: flowctl versions pipelines/etl.yaml
    """
    from flowctl.diff.release import release_history
    from flowctl.diff.render import one_line
    from flowctl.spec import require_pipeline_file

    require_pipeline_file(pipeline)
    chosen = pick_format(fmt, as_json, ("text", "json"))
    entries = release_history(os.getcwd(), pipeline, tag_format=tag_pattern(pattern, tag_format))
    if chosen == "json":
        doc = [
            {
                "tag": e.release.tag,
                "version": str(e.release.version),
                "commit": e.release.commit,
                "date": e.date,
                "changed": e.changed,
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
        mark = "*" if e.changed else " "
        sys.stdout.write(f"{e.release.tag:<{width}}  {e.date}  {e.release.commit[:7]}  {mark} {what}\n")
    return 0
