"""What ``flowctl run`` shows after (or instead of) a run: the summary with its hints, the
metrics and alerts the observer gathered, the exit code, and the ``--dry-run`` listing.

The render step of ``cli/run.py``'s parse → build → run → render (``cli/_run_build``
builds); nothing here changes how a run goes, and nothing here decides the exit code but
``exit_code``.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowctl.cli._run_build import BuiltRun, RunContext
    from flowctl.observe.observer import RunObserver
    from flowctl.run.prepare import PreparedRun
    from flowctl.run.scheduler import RunResult


def render_run(context: RunContext, prepared: PreparedRun, built: BuiltRun, result: RunResult, *, verbose: bool) -> int:
    """The summary (live or plain), the end-of-run metrics and alerts, the warnings of sinks
    that failed; the exit code."""
    from flowctl.cli._common import warn
    from flowctl.observe.fanout import reader_gone, sink_name
    from flowctl.observe.summary import render_summary, write_summary

    details = observed(context.observer, verbose=verbose)
    hint = resume_hint(context.shown, prepared, result, built.logs_dir)
    fanout = built.fanout
    # A reader gone (`flowctl run … | head -1`) is the boundary's (_common.reader_safe_output):
    # the summary goes to /dev/null, and the exit code still says how the run went.
    if built.view.console is not None:
        render_summary(built.summary, built.view.console, hint=hint, details=details)
    else:
        write_summary(built.summary, sys.stdout, hint=hint, details=details)
    for sink, exc in fanout.errors:
        if not reader_gone(exc):
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            warn(f"{sink_name(sink)} failed and was switched off ({why}); the run went on")
    return exit_code(result)


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
    lines += _dead_letter_hint(prepared, result.run_id, state_dir)
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


def _dead_letter_hint(prepared: PreparedRun, run_id: str, state_dir: str) -> list[str]:
    """Where the items a foreach step dead-lettered wait (a step within its tolerance succeeds:
    nothing else in the summary points at them; trial 15)."""
    if not any(step.foreach is not None for step in prepared.pipeline.steps.values()):
        return []
    from flowctl.errors import FlowctlError
    from flowctl.state.deadletter import dead_letters

    try:
        queue = dead_letters(state_dir, run_id)
    except FlowctlError:  # the summary never fails a run; `dlq list` will say what is wrong
        return []
    if not queue:
        return []
    steps = ", ".join(sorted({r.step for r in queue}))
    return [f"Dead letters: {len(queue)} item(s) of {steps}: flowctl dlq list --run {run_id} "
            f"(after a fix: flowctl dlq replay --run {run_id} --all)"]


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


__all__ = ["exit_code", "observed", "print_dry_run", "render_run", "resume_hint"]
