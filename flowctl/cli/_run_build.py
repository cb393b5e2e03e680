"""The composition root of ``flowctl run``: the request, what is settled before the lock, and
``build_run``, which assembles executor, sinks and scheduler.

``cli/run.py`` reads as parse → build → run → render (check-jsonschema's ``build_*``
functions in ``cli/main_command.py``): the typer options fill one frozen ``RunRequest``;
``settle`` decides, before the lock, everything that can still refuse the run cheaply (the
executor, the ``--scheduled`` guard, the observer's options) into a ``RunContext``; the state
session (``cli/_run_state.open_run``) gives its decisions as a typed ``SessionPlan``; and
``build_run(request, context, prepared, session)`` wires the run's parts and is closed by a
``with`` (executor closed, live view stopped), both for the local executor and for Dask. The
run's provenance is merged here and nowhere else (``run_provenance``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flowctl.cli._executor import ExecutorOptions

if TYPE_CHECKING:
    from rich.console import Console

    from flowctl.cli._executor import ExecutorChoice
    from flowctl.observe.fanout import FanOut
    from flowctl.observe.live import LiveView
    from flowctl.observe.observer import RunObserver
    from flowctl.observe.plain import PlainSink
    from flowctl.observe.summary import RunSummary
    from flowctl.run.chaos import ChaosRun
    from flowctl.run.options import RunResult, Selection, SessionPlan
    from flowctl.run.prepare import PreparedRun
    from flowctl.run.scheduler import Scheduler
    from flowctl.state.assess import ResumeTarget
    from flowctl.state.session import RunSession


@dataclass(frozen=True, slots=True)
class RunRequest:
    """``flowctl run``'s options, as given (see ``flowctl run --help`` for each)."""

    pipeline: str
    params: tuple[str, ...] = ()  # -p NAME=VALUE, unparsed
    concurrency: int | None = None
    only: tuple[str, ...] = ()
    from_: tuple[str, ...] = ()
    dry_run: bool = False
    fail_fast: bool = False
    state_dir: str | None = None
    stream: bool = False
    no_progress: bool = False
    resume: bool = False
    run_id: str | None = None
    force: bool = False
    force_steps: tuple[str, ...] = ()
    wait: str | None = None  # --wait: None absent, "forever" bare, else a duration
    orphans: str = "kill"
    log_format: str | None = None
    log_file: str | None = None
    metrics_file: str | None = None
    pushgateway: str | None = None
    scheduled: bool = False
    ref: str | None = None
    worktree: str | None = None
    report: str | None = None
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)
    chaos: str | None = None  # --chaos SPEC; "@pipeline" for a bare --chaos (cli/_chaos.py)
    #: `flowctl dlq replay`: a foreach step and the keys to send again, in the run itself
    replay: tuple[str, tuple[str, ...]] | None = None

    @property
    def resuming(self) -> bool:
        """--resume, or --run-id (which implies it)."""
        return self.resume or self.run_id is not None


@dataclass(frozen=True, slots=True)
class RunContext:
    """What ``flowctl run`` settled before taking the lock."""

    state_dir: str  # absolute
    shown: str  # how the summary's hints name the pipeline (with --ref REF)
    target: ResumeTarget  # the run --resume continues, the params and selection to run with
    selection: Selection  # recorded with the run
    choice: ExecutorChoice
    observer: RunObserver
    live: bool  # rich live view (a terminal, no --no-progress), else plain lines
    ref_provenance: Mapping[str, object]  # --ref: the tag and commit run
    fire_time: float | None  # --scheduled: the fire time this run belongs to
    chaos: ChaosRun | None = None  # the faults to inject (issue 17)


def settle(
    request: RunRequest, prepared: PreparedRun, target: ResumeTarget, *, state_dir: str, shown: str,
    ref_provenance: Mapping[str, object], live: bool,
) -> RunContext | None:
    """Choose the executor, apply the ``--scheduled`` guard (None: not due, said on stdout;
    before the lock, so a firing that is not due touches nothing) and check the observer's
    options. Raises UsageError (exit 2)."""
    from flowctl.cli._chaos import chaos_for
    from flowctl.cli._executor import choose_executor
    from flowctl.observe.observer import RunObserver
    from flowctl.run.options import Selection

    choice = choose_executor(request.executor, prepared, orphans=request.orphans)
    chaos = chaos_for(request.chaos, prepared, target.record, choice.kind, state_dir, shown=shown)
    fire_time: float | None = None
    if request.scheduled:
        from flowctl.schedule.service import due_firing

        firing = due_firing(prepared.pipeline)
        if not firing.due:
            print(firing.message, flush=True)
            return None
        fire_time = firing.fire_time
    observer = RunObserver(
        prepared.pipeline, log_format_option=request.log_format, log_file=request.log_file,
        metrics_file=request.metrics_file, pushgateway=request.pushgateway, state_dir=state_dir,
    )
    # A resume records the forcing of the run it continues (issue 12: kept along the chain).
    selection = Selection(target.only, target.from_, target.force, target.force_steps)
    return RunContext(state_dir, shown, target, selection, choice, observer, live, ref_provenance, fire_time, chaos)


@dataclass(frozen=True, slots=True)
class View:
    """The sink the user watches: the rich live view on a terminal (``live``, drawn on
    ``console``), else plain timestamped lines."""

    sink: LiveView | PlainSink
    live: LiveView | None
    console: Console | None


@dataclass(frozen=True, slots=True)
class BuiltRun:
    """A run ready to start: the scheduler and the sinks its summary is rendered from."""

    scheduler: Scheduler
    fanout: FanOut
    summary: RunSummary
    view: View
    logs_dir: str

    def run(self) -> RunResult:
        if not gc.isenabled():  # off during start-up (flowctl/__main__.py): on for the loop,
            gc.freeze()  # which then never walks what start-up built
            gc.enable()
        return self.scheduler.run()


def run_provenance(
    prepared: PreparedRun, plan: SessionPlan, context: RunContext, executor: Mapping[str, object]
) -> Mapping[str, object]:
    """What the run records about where it came from: the pipeline file's hash, then what the
    session found (git commit, dirty), then --ref's tag and commit, then where it ran."""
    return {"pipeline_sha256": prepared.pipeline.source_sha256, **plan.provenance, **context.ref_provenance, **executor}


@contextlib.contextmanager
def build_run(
    request: RunRequest, context: RunContext, prepared: PreparedRun, session: RunSession
) -> Iterator[BuiltRun]:
    """Assemble the run: its log folder, the view, the fan-out to every sink, the executor
    (local, or a Dask cluster: ``cli._executor.open_executor``) and the scheduler. Leaving the
    ``with`` closes the executor and stops the live view. Raises StorageError (no log folder),
    UsageError (a step no worker can take)."""
    from flowctl.cli._executor import open_executor
    from flowctl.cli._run_state import make_logs_dir
    from flowctl.observe.fanout import FanOut
    from flowctl.observe.summary import RunSummary
    from flowctl.run.options import RunOptions
    from flowctl.run.scheduler import Scheduler

    logs_dir = os.path.join(context.state_dir, "runs", session.run_id)
    make_logs_dir(logs_dir)  # step folders appear with their first output
    summary = RunSummary()
    view = build_view(live=context.live, logs_dir=logs_dir, state_dir=context.state_dir, prepared=prepared)
    fanout = FanOut([summary, view.sink, *context.observer.sinks])
    with contextlib.ExitStack() as stack:  # unwound last in, first out: executor, then the view
        if view.live is not None:
            stack.callback(view.live.stop)
        opened = open_executor(context.choice, prepared, session, context.state_dir, emit=fanout,
                               stream=request.stream, plain=not context.live)
        stack.enter_context(contextlib.closing(opened.executor))
        plan = session.plan()  # reuse, fingerprints, resumed_from, provenance (git: once)
        options = RunOptions(
            logs_dir=logs_dir,
            concurrency=request.concurrency or prepared.pipeline.concurrency or opened.concurrency,
            fail_fast=request.fail_fast, stream=request.stream,
            resources=opened.limits, params=dict(prepared.params), selection=context.selection,
            fire_time=context.fire_time, reuse=plan.reuse, fingerprints=plan.fingerprints,
            fingerprint_at_start=plan.fingerprint_at_start,
            resumed_from=plan.resumed_from, items_done=plan.items_done, results_paths=plan.results_paths,
            stdout_paths=plan.stdout_paths,
            items_carried=plan.items_carried, items_replayed=plan.items_replayed,
            attempts_before=plan.attempts_before,
            provenance=run_provenance(prepared, plan, context, opened.provenance), chaos=context.chaos,
        )
        scheduler = Scheduler(prepared.plan, prepared.invocations, opened.executor, session.store, fanout,
                              options, remediations=prepared.remediations, run_id=session.run_id)
        yield BuiltRun(scheduler, fanout, summary, view, logs_dir)


def build_view(*, live: bool, logs_dir: str, state_dir: str, prepared: PreparedRun) -> View:
    """The view of the run. The live view's ETA starts from the steps' durations in earlier
    runs, read here before the run starts (an unreadable history only makes the ETA a guess)."""
    if live:
        from flowctl.cli._common import console
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
        view = LiveView(out, typical=typical, needs=needs)
        return View(view, view, out)
    from flowctl.observe.plain import PlainSink

    return View(PlainSink(sys.stdout, logs_dir=logs_dir), None, None)


__all__ = ["BuiltRun", "RunContext", "RunRequest", "View", "build_run", "build_view", "run_provenance", "settle"]
