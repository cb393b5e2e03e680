"""``flowctl doctor``: check the state folder; repair it or move a bad database aside."""

from __future__ import annotations

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format
from flowctl.cli._history import format_option, state_dir_option


@app.command()
def doctor(
    pipeline: str = typer.Argument(None, help="A pipeline file: check the state folder beside it."),
    repair: bool = typer.Option(False, "--repair", help="Salvage a damaged database into a new one (the bad file is kept aside) and record dead runs as interrupted."),
    move_aside: bool = typer.Option(False, "--move-aside", help="Rename the database so the next run starts afresh."),
    state_dir: str = state_dir_option(),
    fmt: str = format_option(),
    as_json: bool = json_option(),
) -> int:
    """Check the state database (integrity, schema version, dead runs, locks). Exits 1 when a
    problem remains.

    Example: flowctl doctor --repair
    """
    from flowctl.cli._history import emit_json
    from flowctl.errors import UsageError
    from flowctl.state import doctor as core
    from flowctl.state.views import state_dir_for

    chosen = pick_format(fmt, as_json, ("text", "json"))
    if repair and move_aside:
        raise UsageError("choose one of --repair and --move-aside")
    folder = state_dir_for(state_dir, pipeline)
    if move_aside:
        report = core.move_aside(folder)
    elif repair:
        report = core.repair(folder)
    else:
        report = core.check(folder)
    if chosen == "json":
        emit_json({"state_dir": report.state_dir, "healthy": report.healthy, "findings": list(report.findings),
                   "actions": list(report.actions)})
    else:
        print(f"state folder {report.state_dir}")
        for action in report.actions:
            print(f"  done: {action}")
        for finding in report.findings:
            print(f"  {finding.level:<7} {finding.check}: {finding.message}")
            if finding.hint and finding.level != "ok":
                print(f"          hint: {finding.hint}")
        print("healthy" if report.healthy else "problems found")
    return 0 if report.healthy else 1
