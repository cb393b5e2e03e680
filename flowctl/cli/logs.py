"""``flowctl logs RUN_ID STEP [--attempt N]``: print the log of one attempt of a step."""

from __future__ import annotations

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format
from flowctl.cli._history import format_option, state_dir_option


@app.command()
def logs(
    run_id: str = typer.Argument(..., help="A run id (or a unique prefix of one)."),
    step: str = typer.Argument(..., help="The step id."),
    attempt: int = typer.Option(None, "--attempt", "-a", min=1, help="Which attempt (default: the last)."),
    state_dir: str = state_dir_option(),
    fmt: str = format_option(),
    as_json: bool = json_option(),
) -> int:
    """Print a step's log (the last attempt unless --attempt N). JSON gives the path and text.

    An attempt that printed nothing has no log file: this says so on stderr and exits 0.

    Example: flowctl logs 20261125T020000-3fa1 load --attempt 2
    """
    import sys

    from flowctl.cli._history import emit_json
    from flowctl.state.views import state_dir_for, step_log

    chosen = pick_format(fmt, as_json, ("text", "json"))
    log = step_log(state_dir_for(state_dir), run_id, step, attempt)
    data = log.path.read_bytes() if log.exists else b""
    if chosen == "json":
        emit_json({"run_id": log.run_id, "step": step, "attempt": log.attempt,
                   "path": str(log.path) if log.exists else None, "text": data.decode("utf-8", "replace")})
        return 0
    if not log.exists:
        print(f"{step} attempt {log.attempt} of run {log.run_id} printed nothing (no log file)", file=sys.stderr)
        return 0
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0
