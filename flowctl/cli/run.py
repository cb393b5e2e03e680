"""``flowctl run``: run a pipeline's steps concurrently with retries, timeouts and clean Ctrl-C.

Thin: parse options, ``prepare_run`` (everything that can fail before a process starts), wire
the pieces (run store, executor, sinks) and call the scheduler, then render the summary and
return the exit code. The run store is the SQLite store of the run's state session
(``cli/_run_state.open_run``: lock, store, what to reuse).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from typing import TYPE_CHECKING, Any

import typer

from flowctl.cli._app import app
from flowctl.cli._common import console, param_option, stdout_is_tty
from flowctl.cli._wait import OptionalWaitCommand

if TYPE_CHECKING:
    from flowctl.cli._executor import ExecutorChoice
    from flowctl.observe.observer import RunObserver
    from flowctl.run.chaos import ChaosRun
    from flowctl.state.session import RunSession
    from flowctl.run.prepare import PreparedRun
    from flowctl.run.scheduler import RunResult


_WAIT_OPTION: Any = typer.Option(
    None, "--wait", metavar="[DURATION]",
    help="When another run of this pipeline holds the lock, wait for it (for ever, or at most "
    "DURATION, e.g. 10m) instead of exiting with 75.",
)


@app.command("run", cls=OptionalWaitCommand)
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
        "at most DURATION) and then end what is left.",
    ),
    log_format: str | None = typer.Option(
        None, "--log-format", metavar="FORMAT",
        help="json: one JSON object per event on stderr (or --log-file). Default: $FLOWCTL_LOG_FORMAT, else text.",
    ),
    log_file: str | None = typer.Option(None, "--log-file", metavar="PATH", help="Append the JSON log to PATH."),
    metrics_file: str | None = typer.Option(
        None, "--metrics-file", metavar="PATH", help="Write the run's Prometheus metrics to PATH (for node_exporter)."
    ),
    pushgateway: str | None = typer.Option(
        None, "--pushgateway", metavar="URL", help="Push the run's Prometheus metrics to this Pushgateway."
    ),
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
        None, "--dask-threads", min=1, metavar="N", help="Steps at once per worker of the local cluster (default: CPUs / workers).",
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
    from flowctl.cli._executor import ExecutorOptions, choose_executor
    from flowctl.cli._run_state import open_run, resume_target
    from flowctl.run.prepare import prepare_run
    from flowctl.spec.resolve import parse_param_args

    folder = state_folder(pipeline, state_dir)
    target = resume_target(
        folder, pipeline, parse_param_args(params), only, from_, resume=resume or run_id is not None,
        run_id=run_id, force=force, force_steps=force_step,
    )
    only, from_ = list(target.only), list(target.from_)
    with contextlib.ExitStack() as stack:
        # --ref: the work tree stays untouched, state stays in the usual folder; what the steps
        # write in REF's worktree is kept and announced after the summary (cli/_ref.py)
        from flowctl.cli._ref import enter_ref

        source, shown, ref_provenance = enter_ref(stack, pipeline, ref, worktree, folder, quiet=dry_run)
        prepared = prepare_run(source, overrides=target.params, only=only, from_=from_, force_steps=force_step)
        from flowctl.cli._boundary import report_warnings

        report_warnings(prepared.warnings)
        if prepared.short_secrets:  # once per run, by name: never the value
            print(f"flowctl: warning: secret {', '.join(prepared.short_secrets)}: shorter than 4 characters, so "
                  "masked in output only where it stands as a whole word", file=sys.stderr)
        if dry_run:
            print_dry_run(prepared, concurrency)
            return 0
        choice = choose_executor(ExecutorOptions(
            executor, dask_scheduler, dask_workers, dask_threads, tuple(dask_resources), dask_lease, tuple(resources),
        ), prepared)
        from flowctl.cli._chaos import chaos_for

        chaos_run = chaos_for(chaos, prepared, target.record, choice.kind, folder)
        fire_time: float | None = None
        if scheduled:  # the guard comes before the lock: a firing that is not due touches nothing
            from flowctl.schedule.service import due_firing

            firing = due_firing(prepared.pipeline)
            if not firing.due:
                print(firing.message, flush=True)
                return 0
            fire_time = firing.fire_time
        # A resume records the forcing of the run it continues (issue 12: kept along the chain).
        selection: dict[str, object] = {"only": list(only), "from": list(from_), "force": target.force,
                                        "force_steps": list(target.force_steps)}
        from flowctl.observe.observer import RunObserver

        observer = RunObserver(
            prepared.pipeline, log_format_option=log_format, log_file=log_file,
            metrics_file=metrics_file, pushgateway=pushgateway, state_dir=folder,
        )
        live = stdout_is_tty() and not no_progress
        session = stack.enter_context(
            open_run(folder, prepared, target, force=force, force_steps=force_step, wait=wait, plain=not live,
                     orphans=orphans)
        )
        if session is None:
            return 0  # a resume with nothing left to do (already said so)
        code = execute(
            prepared,
            pipeline_arg=shown,
            state_dir=folder,
            concurrency=concurrency or prepared.pipeline.concurrency,
            fail_fast=fail_fast,
            stream=stream,
            live=live,
            selection=selection,
            session=session,
            observer=observer,
            fire_time=fire_time,
            provenance=ref_provenance,
            choice=choice,
            chaos=chaos_run,
        )
        if report is not None:  # a report that cannot be written is a warning, never the exit code
            from flowctl.cli.report import write_after_run

            write_after_run(report, state_dir=folder, run_id=session.run_id, pipeline=prepared.pipeline)
        return code


def state_folder(pipeline_arg: str, given: str | None) -> str:
    """The run's state folder, made absolute (``state.location.state_dir_for`` decides)."""
    from flowctl.state.views import state_dir_for

    return os.path.abspath(state_dir_for(given, pipeline_arg))


def execute(
    prepared: PreparedRun,
    *,
    pipeline_arg: str,
    state_dir: str,
    concurrency: int | None,
    fail_fast: bool,
    stream: bool,
    live: bool,
    selection: dict[str, object],
    session: RunSession,
    observer: RunObserver | None = None,
    fire_time: float | None = None,
    provenance: dict[str, object] | None = None,
    choice: ExecutorChoice | None = None,
    chaos: ChaosRun | None = None,
) -> int:
    """Wire store, executor and sinks, run the scheduler, print the summary; the exit code."""
    from flowctl.cli._common import silence_stdout, warn
    from flowctl.cli._executor import ExecutorChoice, open_executor
    from flowctl.cli._run_state import make_logs_dir, run_options
    from flowctl.observe.fanout import FanOut, reader_gone, sink_name
    from flowctl.observe.summary import RunSummary, render_summary, write_summary
    from flowctl.run.scheduler import RunOptions, Scheduler

    run_id = session.run_id
    logs_dir = os.path.join(state_dir, "runs", run_id)
    make_logs_dir(logs_dir)  # step folders appear with their first output
    summary = RunSummary()
    view, out = build_view(live=live, logs_dir=logs_dir, state_dir=state_dir, prepared=prepared)
    fanout = FanOut([summary, view, *(observer.sinks if observer else ())])
    store = session.store
    try:
        built = open_executor(choice or ExecutorChoice("local"), prepared, session, state_dir, emit=fanout,
                              stream=stream, plain=not live)
    except BaseException:
        if live and view is not None:
            view.stop()
        raise
    executor = built.executor
    from_state = run_options(session)  # reuse, fingerprints, resumed_from, provenance (git: once)
    try:
        scheduler = Scheduler(
            prepared.plan, prepared.invocations, executor, store, fanout,
            RunOptions(
                logs_dir=logs_dir, concurrency=concurrency or built.concurrency, fail_fast=fail_fast,
                stream=stream, environ=built.environ, resources=built.limits, params=dict(prepared.params),
                selection=selection, fire_time=fire_time, chaos=chaos,
                provenance={"pipeline_sha256": prepared.pipeline.source_sha256,
                            **from_state.get("provenance", {}), **(provenance or {}), **built.provenance},
                **{k: v for k, v in from_state.items() if k != "provenance"},
            ),
            remediations=prepared.remediations, run_id=run_id,
        )
        if not gc.isenabled():  # off during start-up (flowctl/__main__.py): on for the loop,
            gc.freeze()  # which then never walks what start-up built
            gc.enable()
        result = scheduler.run()
    finally:
        executor.close()
        if live and view is not None:
            view.stop()
    details = observed(observer, verbose=stream) if observer is not None else []
    hint = resume_hint(pipeline_arg, prepared, result, logs_dir)
    if any(reader_gone(exc) for _, exc in fanout.errors):
        silence_stdout()  # `flowctl run … | head -1`: the run went on; so does the rest, unseen
    try:
        if live:
            render_summary(summary, out, hint=hint, details=details)
        else:
            write_summary(summary, sys.stdout, hint=hint, details=details)
    except BrokenPipeError:  # the reader left during the summary: the exit code still says how the run went
        silence_stdout()
    for sink, exc in fanout.errors:
        if not reader_gone(exc):
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            warn(f"{sink_name(sink)} failed and was switched off ({why}); the run went on")
    return exit_code(result)


def build_view(*, live: bool, logs_dir: str, state_dir: str, prepared: PreparedRun) -> tuple[Any, Any]:
    """The sink the user watches (rich live view on a terminal, plain lines otherwise) and the
    rich console it draws on (None for plain lines). The live view's ETA starts from the steps'
    durations in earlier runs, read here before the run starts (an unreadable history only
    makes the ETA a guess)."""
    if live:
        from flowctl.errors import FlowctlError
        from flowctl.observe.live import LiveView
        from flowctl.state.views import typical_durations

        try:
            typical = typical_durations(state_dir, prepared.pipeline.name)
        except FlowctlError:
            typical = {}
        steps = prepared.pipeline.steps
        needs = {sid: steps[sid].needs for sid in prepared.plan.selected}
        out = console()
        return LiveView(out, typical=typical, needs=needs), out
    from flowctl.observe.plain import PlainSink

    return PlainSink(sys.stdout, logs_dir=logs_dir), None


def observed(observer: RunObserver, *, verbose: bool) -> list[str]:
    """Metrics, exports and alerts after the run (never changing its exit code); the lines the
    summary shows after its totals (the metrics block only where it means something,
    ``report.metrics_wanted``), so the failures stay last."""
    from flowctl.cli._common import warn
    from flowctl.observe.report import alert_lines, delivery_lines, metrics_lines, metrics_wanted

    try:
        report = observer.finish()
    finally:
        observer.close()
    lines = metrics_lines(report.metrics) if metrics_wanted(report.metrics, verbose=verbose) else []
    lines += alert_lines([a for a in report.alerts if a.fired])
    lines += delivery_lines([d for d in report.deliveries if d.ok])
    for warning in report.warnings:
        warn(warning)
    return lines


def exit_code(result: RunResult) -> int:
    from flowctl.errors import ExitCode
    from flowctl.run.events import RunStatus

    if result.status is RunStatus.INTERRUPTED:
        return int(ExitCode.INTERRUPTED)
    if result.status is RunStatus.SUCCEEDED:
        return int(ExitCode.OK)
    return int(ExitCode.FAILED)


def resume_hint(pipeline_arg: str, prepared: PreparedRun, result: RunResult, logs_dir: str) -> list[str]:
    """Where the logs are, the commands to see the run, and how to run what did not finish
    (the steps at its front)."""
    from flowctl.cli._history import next_commands

    state_dir = os.path.dirname(os.path.dirname(logs_dir))  # <state>/runs/<run id>
    lines = [f"Logs: {logs_dir}", *next_commands(result.run_id, state_dir, result.root_failure)]
    status = result.steps
    unfinished = [s for s in prepared.plan.selected if not status[s].done_ok]
    if not unfinished:
        return lines
    front = [
        s for s in unfinished
        if all(n not in status or status[n].done_ok for n in prepared.pipeline.steps[s].needs)
    ]
    # --resume reruns exactly what did not finish (and what changed since), with this run's
    # params and selection; finished steps are reused (state issue).
    lines.append(f"To resume (what finished is reused): flowctl run {pipeline_arg} --resume")
    args = " ".join(f"--from {s}" for s in front)
    lines.append(f"To run what did not finish: flowctl run {pipeline_arg} {args}")
    return lines


def print_dry_run(prepared: PreparedRun, concurrency: int | None) -> None:
    """What would run, in order, with the commands after substitution (secrets masked); a step
    where a value reaches a nested interpreter is marked ``!`` with the places (issue 12)."""
    from flowctl.spec.lint import step_nested_uses

    pipe = prepared.pipeline
    plan = prepared.plan
    conc = concurrency or pipe.concurrency or os.cpu_count() or 1
    out = sys.stdout
    out.write(f"Dry run of {pipe.name}: {len(plan.selected)} steps, concurrency {conc}; nothing is run.\n")
    width = max((len(s) for s in plan.selected), default=0)
    for n, sid in enumerate(plan.selected, 1):
        step = pipe.steps[sid]
        inv = prepared.invocations[sid]
        nested = step_nested_uses(pipe, step)
        out.write(f"{'!' if nested else ' '}{n:>3}. {sid:<{width}}  $ {inv.display}\n")
        for use in nested:
            out.write(f"{'':>6}{'':<{width}}  ! nested-shell-substitution: {use.message}\n")
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


__all__ = ["build_view", "execute", "exit_code", "resume_hint", "state_folder"]
