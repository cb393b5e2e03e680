"""``flowctl release``: tag the next version of a pipeline with a changelog as its message."""

from __future__ import annotations

import json
import os
import sys

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format
from flowctl.cli._tags import tag_format_alias, tag_pattern, tag_pattern_option


@app.command()
def release(
    pipeline: str = typer.Argument(..., help="The pipeline file to release."),
    bump: str = typer.Option(..., "--bump", help="major, minor or patch."),
    pattern: str = tag_pattern_option(
        "The new tag's name, with {name} and {version}. Default: the scheme the repository's tags "
        "use ('{name}/v{version}' per pipeline or 'v{version}' repo-wide; per pipeline when there are none)."
    ),
    tag_format: str = tag_format_alias(),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the summary without creating the tag."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
    as_json: bool = json_option(),
) -> int:
    """Tag the committed pipeline's next version and print the tag's changelog.

    The tag continues the scheme the repository already uses: <name>/vX.Y.Z per pipeline, or
    repo-wide vX.Y.Z (per pipeline when there are no release tags yet). When tags of both schemes
    exist, pick one with --tag-pattern (exit 2 until you do). The work tree must be clean and the
    pipeline valid. The tag message is a changelog-style summary of the changes since the last
    release; no file is written. Push the tag with `git push origin TAG`.

    Example: flowctl release pipelines/etl.yaml --bump minor
    """
    from flowctl.diff.release import make_release
    from flowctl.diff.render import changelog
    from flowctl.spec import require_pipeline_file

    require_pipeline_file(pipeline)
    chosen = pick_format(fmt, as_json, ("text", "json"))
    result = make_release(
        os.getcwd(), pipeline, bump, summarize=changelog, tag_format=tag_pattern(pattern, tag_format), dry_run=dry_run
    )
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
