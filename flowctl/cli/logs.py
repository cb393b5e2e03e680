"""``flowctl logs RUN_ID [STEP] [--attempt N]``: print the log of one attempt of a step.

Without STEP: the root failure's log for a run that failed, else the list of the run's steps with
the command that prints each one's log. ``RUN_ID`` may be ``latest`` or ``latest~N``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format
from flowctl.cli._history import RUN_ID_HELP, format_option, pipeline_option, state_dir_option
from flowctl.limits import MAX_ATTEMPT

if TYPE_CHECKING:
    from flowctl.state.run_records import RunDetail
    from flowctl.state.views import StepLog


@app.command()
def logs(
    run_id: str = typer.Argument(..., help=RUN_ID_HELP),
    step: str = typer.Argument(None, help="The step id (default: the root failure's, or a list of the steps)."),
    attempt: int = typer.Option(None, "--attempt", "-a", min=1, max=MAX_ATTEMPT, help="Which attempt (default: the last)."),
    item: str = typer.Option(None, "--item", metavar="KEY",
                             help="The log of one item of a foreach STEP, by its key (see `flowctl show`)."),
    pipeline: str = pipeline_option(),
    state_dir: str = state_dir_option(),
    fmt: str = format_option(),
    as_json: bool = json_option(),
) -> int:
    """Print a step's log (the last attempt unless --attempt N). JSON gives the path and text.

    Without STEP: the log of the step that made the run fail, or for a run without a failure a
    list of its steps with the command that prints each log. An attempt that printed nothing has
    no log file: this says so on stderr and exits 0. A foreach STEP's log is its last
    dead-lettered item's (--item KEY picks another item).

    Example: flowctl logs latest

    Example: flowctl logs 20261125T020000-3fa1 load --attempt 2

    Example: flowctl logs latest resize --item in/a.png
    """
    import sys

    from flowctl.errors import UsageError
    from flowctl.state.views import attempt_step_log, failure_log, run_details, state_dir_for

    chosen = pick_format(fmt, as_json, ("text", "json"))
    folder = state_dir_for(state_dir, pipeline)
    detail = run_details(folder, run_id, pipeline, command=("logs", run_id, *([step] if step else [])))
    log: StepLog | None
    if item is not None:
        if step is None:
            raise UsageError("--item needs a STEP", hint=f"e.g. flowctl logs {run_id} STEP --item {item}")
        from flowctl.state.items import item_log

        log = item_log(folder, detail.run.run_id, step, item, attempt)
    elif step is not None:
        log = _item_of(folder, detail, step, attempt) or attempt_step_log(folder, detail, step, attempt)
    else:
        if attempt is not None:
            raise UsageError("--attempt needs a STEP", hint=f"e.g. flowctl logs {run_id} STEP --attempt {attempt}")
        root = detail.run.root_failure
        log = failure_log(folder, detail) or (_item_of(folder, detail, root, None) if root else None)
    if log is None:
        return _list_steps(detail, chosen)
    data = log.path.read_bytes() if log.exists else b""
    if chosen == "json":
        from flowctl.cli._history import emit_json

        emit_json({"run_id": log.run_id, "step": log.step, "attempt": log.attempt,
                   "path": str(log.path) if log.exists else None, "text": data.decode("utf-8", "replace")})
        return 0
    if step is None and item is None and not log.item:
        print(f"run {log.run_id} failed at step {log.step}; its attempt {log.attempt} printed:", file=sys.stderr)
    if not log.exists:
        print(f"{log.step} attempt {log.attempt} of run {log.run_id} printed nothing (no log file)", file=sys.stderr)
        return 0
    sys.stdout.flush()
    if sys.stdout.isatty():  # what the step printed must not drive the terminal; a pipe gets the bytes
        from flowctl.masking import terminal_safe

        data = terminal_safe(data.decode("utf-8", "replace")).encode("utf-8")
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0


def _item_of(folder: str | os.PathLike[str], detail: RunDetail, step: str, attempt: int | None) -> StepLog | None:
    """A foreach step has no log of its own, its items do (trial 15: the run's "Failure log"
    hint for one said "never started"): its last dead-lettered item's. None for any other step."""
    import sys

    from flowctl.errors import UsageError
    from flowctl.state.deadletter import dead_letters
    from flowctl.state.items import item_log

    record = detail.step(step)
    run_id = detail.run.run_id
    if record is None or record.attempt_records:
        return None
    queue = dead_letters(folder, run_id, step)
    if not queue:
        from flowctl.state.items import items_of
        from flowctl.state.views import opened

        with opened(folder) as conn:
            if not items_of(conn, run_id, step):
                return None  # a step that never started: the usual words
        raise UsageError(f"step {step} is a foreach step: each of its items has a log of its own",
                         hint=f"flowctl logs {run_id} {step} --item KEY (`flowctl show {run_id}` lists keys)")
    last = max(queue, key=lambda r: r.last_failure or 0.0)
    log = item_log(folder, run_id, step, last.key, attempt)
    print(f"step {step} of run {run_id} is a foreach step; its dead-lettered item {last.key} "
          f"({len(queue)} in the queue: flowctl dlq list --run {run_id}), attempt {log.attempt}, printed:", file=sys.stderr)
    return replace(log, item=last.key)


def _list_steps(detail: RunDetail, chosen: str) -> int:
    """A run with no failure: each step, its status and the command that prints its log."""
    import shlex

    from flowctl.cli._history import emit_json, table

    run = detail.run
    rows = [
        (s.step, s.status, len(s.attempt_records),
         shlex.join(["flowctl", "logs", run.run_id, s.step]) if s.attempt_records else None)
        for s in detail.steps
    ]
    if chosen == "json":
        emit_json({"run_id": run.run_id, "status": run.status, "step": None,
                   "steps": [{"step": r[0], "status": r[1], "attempts": r[2], "command": r[3]} for r in rows]})
        return 0
    print(f"run {run.run_id} of {run.pipeline}: {run.status}; the logs of its steps:")
    table(["STEP", "STATUS", "ATTEMPTS", "LOG"], [[r[0], r[1], str(r[2]), r[3] or "-"] for r in rows])
    return 0
