"""``flowctl diff``: what a change does to the pipelines, against a release or any ref."""

from __future__ import annotations

import os
import sys

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, no_color, pick_format, stdout_is_tty
from flowctl.cli._tags import tag_format_alias, tag_pattern, tag_pattern_option
from flowctl.errors import ExitCode

FORMATS = ("text", "markdown", "json")


@app.command()
def diff(
    pipelines: list[str] = typer.Argument(None, help="Pipeline files or folders (default: every file under pipelines/)."),
    against: str = typer.Option(
        None, "--against", help="Tag, branch or commit to compare with (default: each pipeline's latest release)."
    ),
    to: str = typer.Option(None, "--to", help="Compare with this ref instead of the work tree."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, markdown (a pull-request comment) or json."),
    as_json: bool = json_option(),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when there are changes (like git diff)."),
    pattern: str = tag_pattern_option(),
    tag_format: str = tag_format_alias(),
) -> int:
    """Show what changed in the pipelines' behaviour since their last release.

    Compares the pipelines (not their text): steps added, removed, renamed and changed, dependency
    edges, schedule/params/defaults. Each change has a class (docs/change-classes.md):
    invalidating (the step and what needs it re-run), identity, execution policy (no re-run) or
    documentation; the impact lists the steps that re-run, those whose policy alone changed, and
    new ones. The base is REF from --against, else each pipeline's latest release reachable from
    HEAD, under either tag scheme (<name>/vX.Y.Z or vX.Y.Z). Exit 2 outside a git repo, without
    release tags, with an unknown ref or an invalid pipeline on either side.

    Example: flowctl diff --against v1.2.0 --format markdown > comment.md
    """
    from flowctl.diff import render
    from flowctl.diff.project import diff_project
    from flowctl.spec.validation import expand_folders

    chosen = pick_format(fmt, as_json, FORMATS)
    # A folder means the pipeline files in it, as for validate (issue 13: a folder crashed diff).
    files = [str(p) for p in expand_folders(pipelines)] if pipelines else []
    report = diff_project(os.getcwd(), files, against=against, to=to, tag_format=tag_pattern(pattern, tag_format))
    if chosen == "json":
        text = render.render_json(report)
    elif chosen == "markdown":
        text = render.render_markdown(report)
    else:
        text = render.render_text(report, color=stdout_is_tty() and not no_color())
    sys.stdout.write(text)
    return int(ExitCode.FAILED if exit_code and report.changed else ExitCode.OK)
