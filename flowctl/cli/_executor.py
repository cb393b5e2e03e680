"""``flowctl run --executor``: which executor a run's attempts go to, and building it.

``choose_executor`` reads the options and the pipeline's ``executor:`` block (options win) and
checks, before the lock is taken, everything it can: the Dask extra missing (exit 2 with the
``pip install`` line), malformed ``--dask-workers``/``--resources``, options that do not fit the
executor, and, locally, a step wanting more than ``--resources`` gives. ``open_executor`` builds
the executor once the run holds the pipeline's lock: the local one, or a Dask cluster (started
for the run or connected to); then it refuses steps whose ``resources`` no worker has (exit 2,
before anything starts), stops attempts of a dead client of this pipeline still running on the
workers, warns when secrets would travel to a scheduler without TLS, and says where the run goes.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from flowctl.cli._run_state import orphan_wait
from flowctl.cli._run_state import say as _say
from flowctl.errors import UsageError
from flowctl.limits import MAX_CONCURRENCY

if TYPE_CHECKING:
    from flowctl.run.events import Event
    from flowctl.run.executors.dask import DaskExecutor
    from flowctl.run.executors.dask_settings import DaskSettings
    from flowctl.run.ports import Executor
    from flowctl.run.prepare import PreparedRun
    from flowctl.spec.model import Step
    from flowctl.state.session import RunSession

KINDS = ("local", "dask")
SHARED_CONCURRENCY = MAX_CONCURRENCY  # the most `concurrency:` allows: on a shared cluster its threads decide


@dataclass(frozen=True, slots=True)
class ExecutorOptions:
    """The executor options of ``flowctl run``, as given."""

    executor: str | None = None
    dask_scheduler: str | None = None
    dask_workers: str | None = None
    dask_threads: int | None = None
    dask_resources: tuple[str, ...] = ()
    dask_lease: str | None = None
    resources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExecutorChoice:
    """The executor settled before anything starts."""

    kind: str  # "local" or "dask"
    limits: Mapping[str, float] = field(default_factory=dict)  # --resources (local executor)
    dask: DaskSettings | None = None
    orphans: str = "kill"  # --orphans, checked (kill, wait, wait=DURATION)


@dataclass(frozen=True, slots=True)
class OpenExecutor:
    """A built executor and what the scheduler's options take from it."""

    executor: Executor
    limits: Mapping[str, float]  # resource-counting limits for the scheduler
    concurrency: int  # the default when neither -j nor the pipeline sets one
    provenance: Mapping[str, object]  # recorded with the run: where it ran


class Emit(Protocol):
    def __call__(self, event: Event) -> None: ...


def choose_executor(options: ExecutorOptions, prepared: PreparedRun, *, orphans: str = "kill") -> ExecutorChoice:
    """Settle the executor (see the module docstring); ``orphans`` is ``--orphans``, which under
    Dask also applies to a dead client's attempts on the workers. Raises UsageError (exit 2)."""
    from flowctl.run.resources import check_local, parse_resource_list

    pipeline = prepared.pipeline
    declared = pipeline.executor
    dask_given = [flag for flag, value in (
        ("--dask-scheduler", options.dask_scheduler), ("--dask-workers", options.dask_workers),
        ("--dask-threads", options.dask_threads), ("--dask-resources", options.dask_resources),
        ("--dask-lease", options.dask_lease),
    ) if value]
    kind = options.executor or ("dask" if options.dask_scheduler else None) or (declared.type if declared else "local")
    if kind not in KINDS:
        raise UsageError(f"--executor {kind!r} is not one of: {', '.join(KINDS)}")
    steps = [pipeline.steps[s] for s in prepared.plan.selected]
    if kind == "local":
        if dask_given:
            raise UsageError(f"{dask_given[0]} only applies to --executor dask")
        limits = parse_resource_list(options.resources, "--resources")
        check_local(steps, limits)
        return ExecutorChoice("local", limits)
    if options.resources:
        raise UsageError(
            "--resources sets limits for the local executor; under Dask, workers declare what they have",
            hint="--dask-resources gpu=1 for the cluster flowctl starts, `dask worker --resources gpu=1` on a shared one",
        )
    streamed = [s for s in steps if s.foreach is not None and s.foreach.source.stream]
    if streamed:  # a worker's output reaches us as messages, its stdout as a file on the shared disk
        src = streamed[0].foreach.source if streamed[0].foreach is not None else None
        raise UsageError(
            f"step {streamed[0].id} streams the output of step {src.path if src else '?'} (stream: true), which "
            "--executor dask does not do: a worker's stdout reaches flowctl only when the step ends",
            hint="drop `stream: true` (its items then start once the step succeeded), or run with --executor local",
        )
    orphan_wait(orphans)  # a bad --orphans is an exit 2 before the cluster starts
    return ExecutorChoice("dask", dask=_dask_settings(options, declared.address if declared and declared.type == "dask" else None),
                          orphans=orphans)


def _dask_settings(options: ExecutorOptions, declared_address: str | None) -> DaskSettings:
    from flowctl.run.executors.dask_settings import (
        INSTALL_HINT,
        DaskSettings,
        have_dask,
        parse_workers,
    )
    from flowctl.run.resources import parse_resource_list
    from flowctl.spec.durations import duration_option

    address = options.dask_scheduler or declared_address
    if address is not None and "://" not in address:
        raise UsageError(f"--dask-scheduler {address!r}: expected an address such as tcp://scheduler:8786")
    local_only = [f for f, v in (("--dask-workers", options.dask_workers), ("--dask-threads", options.dask_threads),
                                 ("--dask-resources", options.dask_resources)) if v]
    if address is not None and local_only:
        raise UsageError(f"{local_only[0]} describes the local cluster flowctl starts; {address} has its own workers")
    workers, most = parse_workers(options.dask_workers) if options.dask_workers else (2, None)
    lease = duration_option("--dask-lease", options.dask_lease) if options.dask_lease else 30.0
    if lease < 1.0:
        raise UsageError(f"--dask-lease {options.dask_lease}: at least 1s (the client renews it every third of it)")
    limits = parse_resource_list(options.dask_resources, "--dask-resources")
    if not have_dask():  # after the options: their mistakes are worth fixing before installing
        raise UsageError("--executor dask needs Dask, which is not installed", hint=INSTALL_HINT)
    cpus = os.cpu_count() or 1
    return DaskSettings(
        address=address, workers=workers, max_workers=most,
        threads=options.dask_threads or max(1, cpus // max(1, most or workers)),
        resources=limits, lease=lease,
    )


def open_executor(
    choice: ExecutorChoice,
    prepared: PreparedRun,
    session: RunSession,
    state_dir: str,
    *,
    emit: Emit,
    stream: bool,
    plain: bool,
) -> OpenExecutor:
    """Build the executor the run's attempts go to (see the module docstring); the caller
    closes ``.executor``. Raises UsageError when a step could never start."""
    import time

    from flowctl.run.events import AttemptPlaced, OutputLine
    from flowctl.run.ports import AttemptKey

    def on_output(key: AttemptKey, line: str) -> None:
        emit(OutputLine(run_id=key.run_id, step=key.step, attempt=key.attempt, line=line, at=time.time()))

    def on_placed(key: AttemptKey, worker: str) -> None:
        emit(AttemptPlaced(run_id=key.run_id, step=key.step, attempt=key.attempt, host=worker, at=time.time()))

    if choice.dask is None:
        from flowctl.run.executors.local import LocalExecutor

        return OpenExecutor(
            LocalExecutor(on_output=on_output if stream else None, own_all_children=True),
            choice.limits, os.cpu_count() or 1, {},
        )
    from flowctl.run.executors.dask_settings import INSTALL_HINT

    try:
        from flowctl.run.executors.dask import DaskExecutor
    except ImportError as exc:
        raise UsageError(f"--executor dask needs Dask, which cannot be imported here: {exc}", hint=INSTALL_HINT) from exc
    pipeline = prepared.pipeline
    owner = hashlib.sha256(f"{os.path.realpath(state_dir)}\0{pipeline.name}".encode()).hexdigest()[:16]
    executor = DaskExecutor(choice.dask, run_id=session.run_id, owner=owner,
                            on_output=on_output if stream else None, on_placed=on_placed)
    try:
        _check_before_open(choice.dask, prepared, session)
        try:
            executor.open()
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"cannot reach the Dask scheduler at {choice.dask.address}: {exc}",
                             hint="check the address, and that this machine can reach it") from exc
        _check_resources(executor, prepared, session)
        _stop_orphans(executor, plain, session.run_id, choice.orphans)
        _warn_secrets(executor, prepared)
    except BaseException:
        executor.close()
        raise
    _say([_where(executor)], plain, session.run_id)
    return OpenExecutor(executor, {}, _default_concurrency(executor), {
        "executor": "dask", "dask_scheduler": executor.cluster.address if not executor.cluster.owned else "local cluster",
    })


def _running_steps(prepared: PreparedRun, session: RunSession) -> list[Step]:
    """The steps this run may start (a reused or up-to-date step needs no worker)."""
    reused = session.reuse()
    return [prepared.pipeline.steps[s] for s in prepared.plan.selected if s not in reused]


def _check_before_open(settings: DaskSettings, prepared: PreparedRun, session: RunSession) -> None:
    """A cluster of our own has the workers --dask-resources describes: check before starting it."""
    if settings.address is None:
        _refuse(prepared, session, [dict(settings.resources)], "the workers of the local cluster do not have",
                "declare them: --dask-resources gpu=1,memory=16GiB")


def _check_resources(executor: DaskExecutor, prepared: PreparedRun, session: RunSession) -> None:
    if not executor.cluster.owned:
        _refuse(prepared, session, executor.cluster.offers(), "no connected worker has",
                "start workers that have it (dask worker --resources gpu=1), or change the step's `resources:`")


def _refuse(prepared: PreparedRun, session: RunSession, offers: Sequence[Mapping[str, float]], having: str,
            hint: str) -> None:
    from flowctl.run.resources import refuse, unsatisfiable

    refuse(unsatisfiable(_running_steps(prepared, session), offers), having, hint)


def _stop_orphans(executor: DaskExecutor, plain: bool, run_id: str, policy: str) -> None:
    """Attempts of an earlier run of this pipeline still on the workers: its client died (we
    hold the lock), and its supervisors would stop them only when its lease runs out. Stopped
    at once (``--orphans kill``), or waited for first (``--orphans wait[=DURATION]``), as the
    local executor does with the processes a dead runner left."""
    if executor.cluster.owned:
        return  # a cluster started for this run has nothing of an earlier one
    found = executor.orphans()
    if not found:
        return
    wait = orphan_wait(policy)
    runs = sorted({a["run"] for a in found})
    keys = ", ".join(a["key"] for a in found[:5]) + (" …" if len(found) > 5 else "")
    if wait == 0:
        _say([f"stopping {len(found)} attempt(s) of earlier run(s) {', '.join(runs)} still running on the "
              f"workers (their flowctl is gone): {keys}"], plain, run_id)
        executor.stop_orphans(found)
        return
    _say([f"{len(found)} attempt(s) of earlier run(s) {', '.join(runs)} still running on the workers (their "
          f"flowctl is gone): {keys}", f"  waiting for them to end (--orphans {policy}), then stopping what is left"],
         plain, run_id)
    stopped = executor.stop_orphans(found, wait=wait)
    ended = len(found) - len(stopped)
    _say([f"  {ended} ended by themselves" + (f", {len(stopped)} stopped" if stopped else "")], plain, run_id)


def _warn_secrets(executor: DaskExecutor, prepared: PreparedRun) -> None:
    if executor.cluster.owned or executor.cluster.address.startswith("tls://"):
        return
    secret_steps = [sid for sid, inv in prepared.invocations.items() if inv.secrets]
    if secret_steps:
        sys.stderr.write(
            f"flowctl: warning: the secrets of {', '.join(secret_steps[:5])}{' …' if len(secret_steps) > 5 else ''} "
            f"travel unencrypted to {executor.cluster.address}: use a tls:// scheduler address\n"
        )


def _where(executor: DaskExecutor) -> str:
    workers = executor.cluster.refresh_workers()
    s = executor.settings
    if executor.cluster.owned:
        size = f"{s.workers}-{s.max_workers} workers (adaptive)" if s.max_workers is not None else f"{len(workers)} workers"
        return f"executor: dask, a local cluster at {executor.cluster.address}: {size} x {s.threads} threads"
    return f"executor: dask at {executor.cluster.address}: {len(workers)} workers, {executor.cluster.threads} threads"


def _default_concurrency(executor: DaskExecutor) -> int:
    """What the cluster can take (its slots follow the workers as they come and go); a shared
    cluster may grow during the run, so it gets the format's most."""
    from flowctl.run.executors.dask import PREFETCH

    s = executor.settings
    if executor.cluster.owned:
        return max(1, (s.max_workers or s.workers) * s.threads * PREFETCH)
    return SHARED_CONCURRENCY


__all__ = ["ExecutorChoice", "ExecutorOptions", "OpenExecutor", "choose_executor", "open_executor"]
