"""``flowctl release``: tag the next version of a pipeline with a changelog as its message."""

from __future__ import annotations

import json
import os
import sys

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format


@app.command()
def release(
    pipeline: str = typer.Argument(..., help="The pipeline file to release."),
    bump: str = typer.Option(..., "--bump", help="major, minor or patch."),
    tag_format: str = typer.Option(
        None, "--tag-format", help="Tag name with {name} and {version} (default '{name}/v{version}')."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the summary without creating the tag."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
    as_json: bool = json_option(),
) -> int:
    """Create the annotated tag <name>/vX.Y.Z for the committed pipeline and print its summary.

    The work tree must be clean and the pipeline valid. The tag message is a changelog-style
    summary of the changes since the last release; no file is written. Push the tag with
    `git push origin TAG`.

    Example: flowctl release pipelines/etl.yaml --bump minor
    """
    from flowctl.diff.release import make_release
    from flowctl.diff.render import changelog
    from flowctl.spec import require_pipeline_file

    require_pipeline_file(pipeline)
    chosen = pick_format(fmt, as_json, ("text", "json"))
    result = make_release(os.getcwd(), pipeline, bump, summarize=changelog, tag_format=tag_format, dry_run=dry_run)
    if chosen == "json":
        doc = {
            "tag": result.tag,
            "version": str(result.version),
            "previous": result.previous.tag if result.previous else None,
            "commit": result.commit,
            "created": result.created,
            "message": result.message,
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    verb = "created tag" if result.created else "would create tag (dry run)"
    sys.stdout.write(f"{verb} {result.tag} at {result.commit[:12]}\n\n{result.message}")
    return 0
