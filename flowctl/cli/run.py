"""``flowctl run``: run a pipeline's steps concurrently with retries, timeouts and clean Ctrl-C.

Parse → build → run → render. The options fill one frozen ``RunRequest``; ``run_pipeline``
prepares the run (``run.prepare.prepare_run``: everything that can fail before a process
starts), settles the executor and the ``--scheduled`` guard (``cli/_run_build.settle``), opens
the state session (``cli/_run_state.open_run``: lock, store, what to reuse), assembles the run
(``cli/_run_build.build_run``), runs it and renders the summary (``cli/_run_render``).
See docs/design.md, "The run path".
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING

import typer

from flowctl.cli._app import app
from flowctl.cli._common import metrics_file_option, param_option, pushgateway_option, stdout_is_tty
from flowctl.cli._wait import OptionalWaitCommand, wait_option
from flowctl.limits import MAX_CONCURRENCY

if TYPE_CHECKING:
    from flowctl.cli._run_build import RunRequest


_WAIT_OPTION: str | None = wait_option()


@app.command("run", cls=OptionalWaitCommand)
def run(
    pipeline: str = typer.Argument(..., help="The pipeline file."),
    params: list[str] = param_option(),
    concurrency: int | None = typer.Option(
        None, "--concurrency", "-j", min=1, max=MAX_CONCURRENCY, help="Most steps at once (default: the pipeline's, else the CPU count)."
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
        help="Where runs and logs are kept (default: the project's .flowctl/: the nearest one up "
        "from the pipeline file, else at the top of the git work tree, else beside the file).",
    ),
    stream: bool = typer.Option(False, "--stream", "-v", help="Also print the steps' output live, prefixed with the step id."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Plain timestamped lines even on a terminal."),
    resume: bool = typer.Option(False, "--resume", help="Continue the latest run of this pipeline: steps that succeeded with an unchanged fingerprint are reused (with no run recorded, a new run starts)."),
    run_id: str | None = typer.Option(None, "--run-id", metavar="ID", help="With --resume (implied): continue this run (an id, or latest~N) instead of the latest."),
    force: bool = typer.Option(False, "--force", help="Run every step, even those up to date."),
    force_step: list[str] = typer.Option([], "--force-step", metavar="STEP", help="Run this step and what needs it, even if up to date (repeatable)."),
    wait: str | None = _WAIT_OPTION,
    orphans: str = typer.Option(
        "kill", "--orphans", metavar="kill|wait[=DURATION]",
        help="Processes an earlier run of this pipeline left running when its runner died (kill -9): "
        "end them before anything starts (kill, the default), or wait for them to end (for ever, or "
        "at most DURATION) and then end what is left. Under Dask: its attempts still on the workers.",
    ),
    log_format: str | None = typer.Option(
        None, "--log-format", metavar="FORMAT",
        help="json: one JSON object per event on stderr (or --log-file). Default: $FLOWCTL_LOG_FORMAT, else text.",
    ),
    log_file: str | None = typer.Option(None, "--log-file", metavar="PATH", help="Append the JSON log to PATH."),
    metrics_file: str | None = metrics_file_option(),
    pushgateway: str | None = pushgateway_option(),
    scheduled: bool = typer.Option(
        False, "--scheduled",
        help="Started by cron (schedule install): run only when now is a fire time of the pipeline's "
        "schedule in its timezone (else exit 0), and record that fire time.",
    ),
    ref: str | None = typer.Option(
        None, "--ref", metavar="REF",
        help="Run the pipeline as it was at this tag, branch or commit, from a git worktree (under the "
        "state folder, kept only when the steps write files in it).",
    ),
    worktree: str | None = typer.Option(
        None, "--worktree", metavar="DIR",
        help="With --ref: check REF out into DIR and keep it there (reused when DIR already holds REF).",
    ),
    report: str | None = typer.Option(
        None, "--report", metavar="FILE",
        help="At the end (also after a failure) write the run's HTML report to FILE (see `flowctl report`).",
    ),
    executor: str | None = typer.Option(
        None, "--executor", metavar="local|dask",
        help="Where steps run: local processes (default), or a Dask cluster (pip install 'flowctl[dask]'). "
        "Default: the pipeline's `executor:`.",
    ),
    dask_scheduler: str | None = typer.Option(
        None, "--dask-scheduler", metavar="ADDRESS",
        help="Run on this Dask scheduler (tcp://host:8786, tls://…) instead of a local cluster started for the run.",
    ),
    dask_workers: str | None = typer.Option(
        None, "--dask-workers", metavar="N|MIN:MAX",
        help="Workers of the local cluster (default 2); MIN:MAX makes it adaptive, growing while ready steps wait.",
    ),
    dask_threads: int | None = typer.Option(
        None, "--dask-threads", min=1, max=MAX_CONCURRENCY, metavar="N", help="Steps at once per worker of the local cluster (default: CPUs / workers).",
    ),
    dask_resources: list[str] = typer.Option(
        [], "--dask-resources", metavar="NAME=AMOUNT,…", help="Resources each worker of the local cluster has, e.g. gpu=1,memory=16GiB.",
    ),
    dask_lease: str | None = typer.Option(
        None, "--dask-lease", metavar="DURATION", envvar="FLOWCTL_DASK_LEASE",
        help="A step on a worker is stopped when flowctl has not renewed its lease for this long (default 30s).",
    ),
    resources: list[str] = typer.Option(
        [], "--resources", metavar="NAME=AMOUNT,…",
        help="Local executor: at most this much of each step `resources:` at once, e.g. gpu=1 (unlimited when not given).",
    ),
    chaos: str | None = typer.Option(
        None, "--chaos", metavar="[SPEC]",
        help="Inject faults, deterministically from seed=N (docs/chaos.md): e.g. fail=0.1,delay=500ms@0.2,kill=0.05,"
        "kill-runner=0.02,max=2,steps=load-*,seed=42. Without a value: the pipeline's `chaos:` block. Also FLOWCTL_CHAOS.",
    ),
) -> int:
    """Run the pipeline: each step starts once the steps it needs succeeded.

    Logs of every attempt go to <state>/runs/<run-id>/<step>/<attempt>.log. Exit codes: 0 all
    steps succeeded (failures under continue_on_error allowed), 1 a step failed, 2 invalid
    pipeline or usage, 70 internal error, 74 the state or log storage failed (disk full, state
    deleted or replaced, not writable), 75 another run holds the lock, 130 interrupted.

    Example: flowctl run pipelines/etl.yaml -p day=2026-11-24 --concurrency 4

    Example: flowctl run pipelines/etl.yaml --executor dask --dask-scheduler tcp://scheduler:8786

    Example: flowctl run pipelines/etl.yaml --chaos fail=0.2,kill=0.1,kill-runner=0.05,seed=7
    """
    from flowctl.cli._executor import ExecutorOptions
    from flowctl.cli._run_build import RunRequest

    return run_pipeline(RunRequest(
        pipeline=pipeline, params=tuple(params), concurrency=concurrency, only=tuple(only), from_=tuple(from_),
        dry_run=dry_run, fail_fast=fail_fast, state_dir=state_dir, stream=stream, no_progress=no_progress,
        resume=resume, run_id=run_id, force=force, force_steps=tuple(force_step), wait=wait, orphans=orphans,
        log_format=log_format, log_file=log_file, metrics_file=metrics_file, pushgateway=pushgateway,
        scheduled=scheduled, ref=ref, worktree=worktree, report=report,
        executor=ExecutorOptions(executor, dask_scheduler, dask_workers, dask_threads, tuple(dask_resources),
                                 dask_lease, tuple(resources)),
        chaos=chaos,
    ))


def run_pipeline(request: RunRequest) -> int:
    """``flowctl run`` once the options are parsed: prepare, settle, open the session, build,
    run, render; the exit code. Raises the ``FlowctlError``s ``cli/_boundary`` renders."""
    from flowctl.cli._boundary import report_warnings
    from flowctl.cli._ref import enter_ref
    from flowctl.cli._run_build import build_run, settle
    from flowctl.cli._run_render import print_dry_run, render_run
    from flowctl.cli._run_state import open_run, resume_target
    from flowctl.run.prepare import prepare_run

    folder = state_folder(request.pipeline, request.state_dir)
    target = resume_target(folder, request)
    with contextlib.ExitStack() as stack:
        # --ref: the work tree stays untouched, state stays in the usual folder; what the steps
        # write in REF's worktree is kept and announced after the summary (cli/_ref.py)
        source, shown, ref_provenance = enter_ref(stack, request.pipeline, request.ref, request.worktree, folder,
                                                  quiet=request.dry_run)
        prepared = prepare_run(source, overrides=target.params, only=target.only, from_=target.from_,
                               force_steps=request.force_steps)
        report_warnings(prepared.warnings)
        if prepared.short_secrets:  # once per run, by name: never the value
            print(f"flowctl: warning: secret {', '.join(prepared.short_secrets)}: shorter than 4 characters, so "
                  "masked in output only where it stands as a whole word", file=sys.stderr)
        if request.dry_run:
            print_dry_run(prepared, request.concurrency)
            return 0
        live = stdout_is_tty() and not request.no_progress
        context = settle(request, prepared, target, state_dir=folder, shown=shown, ref_provenance=ref_provenance,
                         live=live)
        if context is None:
            return 0  # --scheduled, and now is not a fire time (already said so)
        session = stack.enter_context(open_run(folder, prepared, target, request, plain=not live))
        if session is None:
            return 0  # a resume with nothing left to do (already said so)
        with build_run(request, context, prepared, session) as built:
            result = built.run()
        code = render_run(context, prepared, built, result, verbose=request.stream)
        if request.report is not None:  # a report that cannot be written is a warning, never the exit code
            from flowctl.cli.report import write_after_run

            write_after_run(request.report, state_dir=folder, run_id=session.run_id, pipeline=prepared.pipeline)
        return code


def state_folder(pipeline_arg: str, given: str | None) -> str:
    """The run's state folder, made absolute (``state.location.state_dir_for`` decides)."""
    from flowctl.state.views import state_dir_for

    return os.path.abspath(state_dir_for(given, pipeline_arg))


__all__ = ["run", "run_pipeline", "state_folder"]
