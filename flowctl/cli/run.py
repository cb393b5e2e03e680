"""``flowctl run``: run a pipeline's steps concurrently with retries, timeouts and clean Ctrl-C.

Thin: parse options, ``prepare_run`` (everything that can fail before a process starts), wire
the pieces (run store, executor, sinks) and call the scheduler, then render the summary and
return the exit code. The run store is built in one place, ``build_store``: the SQLite store
of the state issue plugs in there.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any

import typer

from flowctl.cli._app import app
from flowctl.cli._common import console, param_option, stdout_is_tty

if TYPE_CHECKING:
    from flowctl.run.ports import RunStore
    from flowctl.run.prepare import PreparedRun
    from flowctl.run.scheduler import RunResult

STATE_DIR_NAME = ".flowctl"


@app.command("run")
def run(
    pipeline: str = typer.Argument(..., help="The pipeline file."),
    params: list[str] = param_option(),
    concurrency: int | None = typer.Option(
        None, "--concurrency", "-j", min=1, help="Most steps at once (default: the pipeline's, else the CPU count)."
    ),
    only: list[str] = typer.Option([], "--only", metavar="STEP", help="Only these steps and what they need."),
    from_: list[str] = typer.Option([], "--from", metavar="STEP", help="These steps and everything downstream."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would run, in order; run nothing."),
    fail_fast: bool = typer.Option(
        False, "--fail-fast/--keep-going",
        help="On a failure, cancel running steps at once (default: let independent branches finish).",
    ),
    state_dir: str | None = typer.Option(
        None, "--state-dir", envvar="FLOWCTL_STATE_DIR", metavar="DIR",
        help="Where runs and logs are kept (default: .flowctl/ beside the pipeline file).",
    ),
    stream: bool = typer.Option(False, "--stream", "-v", help="Also print the steps' output live, prefixed with the step id."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Plain timestamped lines even on a terminal."),
    ref: str | None = typer.Option(
        None, "--ref", metavar="REF",
        help="Run the pipeline as it was at this tag, branch or commit, from a temporary git worktree.",
    ),
) -> int:
    """Run the pipeline: each step starts once the steps it needs succeeded.

    Logs of every attempt go to <state>/runs/<run-id>/<step>/<attempt>.log. Exit codes: 0 all
    steps succeeded (failures under continue_on_error allowed), 1 a step failed, 2 invalid
    pipeline or usage, 70 internal error, 75 another run holds the lock, 130 interrupted.

    Example: flowctl run pipelines/etl.yaml -p date=2026-11-24 --concurrency 4
    """
    from flowctl.run.prepare import prepare_run
    from flowctl.spec.resolve import parse_param_args

    with contextlib.ExitStack() as stack:
        source, shown, provenance = pipeline, pipeline, {}
        if ref is not None:  # the work tree stays untouched; state stays in the usual folder
            from flowctl.diff.worktree import checkout_at

            at = stack.enter_context(checkout_at(pipeline, ref))
            source, shown, provenance = at.pipeline_path, f"{pipeline} --ref {ref}", at.provenance
            sys.stdout.write(f"Running {pipeline} as of {ref} (commit {at.commit[:12]}) from a temporary worktree\n")
            sys.stdout.flush()
        prepared = prepare_run(source, overrides=parse_param_args(params), only=only, from_=from_)
        if dry_run:
            print_dry_run(prepared, concurrency)
            return 0
        folder = state_folder(pipeline, state_dir)
        selection: dict[str, object] = {"only": list(only), "from": list(from_)}
        return execute(
            prepared,
            pipeline_arg=shown,
            state_dir=folder,
            concurrency=concurrency or prepared.pipeline.concurrency or os.cpu_count() or 1,
            fail_fast=fail_fast,
            stream=stream,
            live=stdout_is_tty() and not no_progress,
            selection=selection,
            provenance=provenance,
        )


def state_folder(pipeline_arg: str, given: str | None) -> str:
    """``--state-dir`` / ``FLOWCTL_STATE_DIR``, else ``.flowctl/`` beside the pipeline file."""
    if given:
        return os.path.abspath(given)
    return os.path.join(os.path.dirname(os.path.abspath(pipeline_arg)), STATE_DIR_NAME)


def build_store(state_dir: str, prepared: PreparedRun) -> RunStore:
    """The run store every event is checkpointed to (the state issue's SQLite store goes here)."""
    from flowctl.run.memory import MemoryRunStore

    return MemoryRunStore()


def execute(
    prepared: PreparedRun,
    *,
    pipeline_arg: str,
    state_dir: str,
    concurrency: int,
    fail_fast: bool,
    stream: bool,
    live: bool,
    selection: dict[str, object],
    provenance: dict[str, object] | None = None,
) -> int:
    """Wire store, executor and sinks, run the scheduler, print the summary; the exit code."""
    from flowctl.observe.fanout import FanOut, sink_name
    from flowctl.observe.summary import RunSummary, render_summary
    from flowctl.run.events import OutputLine
    from flowctl.run.executors.local import LocalExecutor
    from flowctl.run.scheduler import RunOptions, Scheduler, new_run_id

    run_id = new_run_id()
    logs_dir = os.path.join(state_dir, "runs", run_id)
    out = console()
    summary = RunSummary()
    view: Any = None
    if live:
        from flowctl.observe.live import LiveView

        view = LiveView(out)
    else:
        from flowctl.observe.plain import PlainSink

        view = PlainSink(sys.stdout, logs_dir=logs_dir)
    fanout = FanOut([summary, view])
    store = build_store(state_dir, prepared)

    def on_output(key: Any, line: str) -> None:
        import time

        fanout(OutputLine(run_id=key.run_id, step=key.step, attempt=key.attempt, line=line, at=time.time()))

    executor = LocalExecutor(on_output=on_output if stream else None)
    try:
        scheduler = Scheduler(
            prepared.plan, prepared.invocations, executor, store, fanout,
            RunOptions(
                logs_dir=logs_dir, concurrency=concurrency, fail_fast=fail_fast, stream=stream,
                environ=os.environ, params=dict(prepared.params), selection=selection,
                provenance=dict(provenance or {}),
            ),
            remediations=prepared.remediations, run_id=run_id,
        )
        result = scheduler.run()
    finally:
        executor.close()
        if live and view is not None:
            view.stop()
    render_summary(summary, out, hint=resume_hint(pipeline_arg, prepared, result, logs_dir))
    for sink, exc in fanout.errors:
        print(f"flowctl: warning: output {sink_name(sink)} failed and was switched off: {exc}", file=sys.stderr)
    return exit_code(result)


def exit_code(result: RunResult) -> int:
    from flowctl.errors import ExitCode
    from flowctl.run.events import RunStatus

    if result.status is RunStatus.INTERRUPTED:
        return int(ExitCode.INTERRUPTED)
    if result.status is RunStatus.SUCCEEDED:
        return int(ExitCode.OK)
    return int(ExitCode.FAILED)


def resume_hint(pipeline_arg: str, prepared: PreparedRun, result: RunResult, logs_dir: str) -> list[str]:
    """Where the logs are, and how to run what did not finish (the steps at its front)."""
    lines = [f"Logs: {logs_dir}"]
    status = result.steps
    unfinished = [s for s in prepared.plan.selected if not status[s].done_ok]
    if not unfinished:
        return lines
    front = [
        s for s in unfinished
        if all(n not in status or status[n].done_ok for n in prepared.pipeline.steps[s].needs)
    ]
    args = " ".join(f"--from {s}" for s in front)
    lines.append(f"To run what did not finish: flowctl run {pipeline_arg} {args}")
    return lines


def print_dry_run(prepared: PreparedRun, concurrency: int | None) -> None:
    """What would run, in order, with the commands after substitution (secrets masked)."""
    pipe = prepared.pipeline
    plan = prepared.plan
    conc = concurrency or pipe.concurrency or os.cpu_count() or 1
    out = sys.stdout
    out.write(f"Dry run of {pipe.name}: {len(plan.selected)} steps, concurrency {conc}; nothing is run.\n")
    width = max((len(s) for s in plan.selected), default=0)
    for n, sid in enumerate(plan.selected, 1):
        step = pipe.steps[sid]
        inv = prepared.invocations[sid]
        out.write(f"{n:>4}. {sid:<{width}}  $ {inv.display}\n")
        notes = []
        if step.needs:
            notes.append("needs " + ", ".join(step.needs))
        if inv.cwd != pipe.base_dir:
            notes.append(f"cwd {inv.cwd}")
        if step.retries:
            notes.append(f"retries {step.retries}")
        if step.timeout is not None:
            notes.append(f"timeout {step.timeout:g}s")
        if step.continue_on_error:
            notes.append("continue_on_error")
        rem = prepared.remediations.get(sid)
        if rem is not None:
            notes.append(f"remediate: {rem.display}")
        if notes:
            out.write(f"{'':>6}{'':<{width}}  ({'; '.join(notes)})\n")


__all__ = ["build_store", "execute", "exit_code", "resume_hint", "state_folder"]
