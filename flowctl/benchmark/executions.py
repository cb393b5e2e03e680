"""Running the executions of a benchmark: real ``flowctl run`` processes, at most N at once.

Each execution is ``python -m flowctl run COPY --state-dir SCRATCH --no-progress [-j N] [-p …]``
(the interpreter running the benchmark): what users run, start-up included. It gets its own
working copy (``workspace.copy_workspace``) and its own empty state folder, so no two executions
share outputs, a lock or history (a fresh state folder also means nothing is "up to date" or
reused: every step runs). ``FLOWCTL_MUTE=1`` keeps alerts, notifications and metrics exports
quiet (``observe.observer``). Its output goes to ``output.log`` beside its state.

When it ends, its run is read back from its state database through ``observe.stored_metrics`` and
``observe.metrics`` (the figures ``flowctl show`` reports), and its working copy is deleted (its
state too, unless kept). Executions start in index order; a pool of ``parallel`` threads, each
waiting on one process, bounds how many run at once. Events reach ``emit`` on the calling
thread only. Ctrl-C or SIGTERM stops starting new executions, passes SIGTERM to those running
(a second one: SIGKILL to their process groups), waits for them and raises ``InterruptedRun``.
A run that ends other than succeeded or failed (usage error, storage error, crash) stops the
benchmark with an ``ExecutionFailed`` carrying that exit code and the end of its output.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from flowctl.benchmark.figures import RunSample
from flowctl.benchmark.workspace import Workspace, copy_workspace
from flowctl.errors import ExitCode, FlowctlError, InterruptedRun, StorageError
from flowctl.observe.metrics import compute_run_metrics, run_samples
from flowctl.observe.observer import MUTE_ENV

#: ``flowctl run`` exit codes an execution may end with and still be measured.
_MEASURED = (int(ExitCode.OK), int(ExitCode.FAILED))
_TAIL_LINES = 15


class ExecutionFailed(FlowctlError):
    """An execution ended with an exit code that is no run result (2, 70, 74, 75, …): the
    benchmark exits with the same code."""

    def __init__(self, message: str, exit_code: int, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        known = {int(c) for c in ExitCode}
        self.exit_code = ExitCode(exit_code) if exit_code in known else ExitCode.INTERNAL


@dataclass(frozen=True, slots=True)
class Launch:
    """What every execution of one benchmark shares."""

    workspace: Workspace
    run_args: tuple[str, ...]  # ``flowctl run`` options after the pipeline file (-j, -p)
    environ: Mapping[str, str]  # the processes' environment
    needs: Mapping[str, tuple[str, ...]]  # the pipeline's edges, for the critical path
    scratch: str  # a private temporary folder: working copies (and state unless kept)
    keep: str | None = None  # where measured executions' state and output are kept


@dataclass(frozen=True, slots=True)
class ExecutionStarted:
    index: int
    warmup: bool
    total: int  # executions in this phase
    at: float


@dataclass(frozen=True, slots=True)
class ExecutionFinished:
    index: int
    warmup: bool
    total: int
    at: float
    exit_code: int
    wall_seconds: float
    sample: RunSample | None  # None for a warm-up


BenchEvent = ExecutionStarted | ExecutionFinished


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of an execution: the caller's, muted, with no state folder of its own
    (``--state-dir`` names the scratch one)."""
    env = dict(environ)
    env.pop("FLOWCTL_STATE_DIR", None)
    env[MUTE_ENV] = "1"
    return env


class _Processes:
    """The running executions' processes, and whether to start more."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: set[subprocess.Popen[bytes]] = set()
        self.stopping = False

    def stop(self, *, force: bool) -> None:
        with self.lock:
            self.stopping = True
            live = list(self.running)
        for proc in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if force:
                    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its steps' groups it leads
                else:
                    proc.send_signal(signal.SIGTERM)  # the runner cancels its steps and records it


def run_executions(
    launch: Launch, *, count: int, parallel: int, warmup: bool, emit: Callable[[BenchEvent], None]
) -> tuple[RunSample, ...]:
    """Run ``count`` executions, ``parallel`` at once; the measured samples (none for a warm-up)
    in index order. Raises ``ExecutionFailed``, ``InterruptedRun`` or ``OSError``."""
    if count <= 0:
        return ()
    events: queue.SimpleQueue[BenchEvent] = queue.SimpleQueue()
    procs = _Processes()
    samples: dict[int, RunSample] = {}
    with signals_interrupt(), ThreadPoolExecutor(max_workers=min(parallel, count), thread_name_prefix="flowctl-bench") as pool:
        futures = [pool.submit(_execute, launch, index, warmup, count, procs, events.put) for index in range(1, count + 1)]
        try:
            _collect(futures, events, emit, samples)
        except BaseException:
            _wind_down(procs, futures)
            _drain(events, emit)
            raise
        if procs.stopping:  # a run was interrupted from outside (exit 130)
            raise InterruptedRun("a benchmark execution was interrupted")
    return tuple(samples[i] for i in sorted(samples))


def _collect(
    futures: list[Future[RunSample | None]],
    events: queue.SimpleQueue[BenchEvent],
    emit: Callable[[BenchEvent], None],
    samples: dict[int, RunSample],
) -> None:
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
        _drain(events, emit)
        for future in done:
            sample = future.result()  # re-raises an execution's error here
            if sample is not None:
                samples[sample.index] = sample
    _drain(events, emit)


def _wind_down(procs: _Processes, futures: list[Future[RunSample | None]]) -> None:
    """Stop starting executions, end those running (SIGTERM, SIGKILL on a second Ctrl-C) and
    wait for every worker."""
    force = False
    while True:
        procs.stop(force=force)
        try:
            wait(futures)
            return
        except KeyboardInterrupt:
            force = True


def _drain(events: queue.SimpleQueue[BenchEvent], emit: Callable[[BenchEvent], None]) -> None:
    while True:
        try:
            event = events.get_nowait()
        except queue.Empty:
            return
        emit(event)


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM stops the benchmark as Ctrl-C does (only the main thread can install it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _execute(
    launch: Launch, index: int, warmup: bool, total: int, procs: _Processes, emit: Callable[[BenchEvent], None]
) -> RunSample | None:
    name = f"{'warmup' if warmup else 'run'}-{index:03d}"
    private = os.path.join(launch.scratch, name)
    kept = os.path.join(launch.keep, name) if launch.keep is not None and not warmup else None
    home = kept or private  # holds state/ and output.log
    try:
        with procs.lock:
            if procs.stopping:
                return None
        root = os.path.join(private, "work")
        try:
            os.makedirs(home, exist_ok=True)
            pipeline = copy_workspace(launch.workspace, root)
        except OSError as exc:
            raise StorageError(
                f"benchmark execution {name}: cannot make its working copy or state folder: {exc}",
                hint="free space there, or point TMPDIR at a folder with room",
            ) from None
        state = os.path.join(home, "state")
        log = os.path.join(home, "output.log")
        code, started, finished, wall = _spawn(launch, root, pipeline, state, log, procs, emit, (index, warmup, total))
        if code is None:
            return None
        if code not in _MEASURED:
            if code == int(ExitCode.INTERRUPTED):
                procs.stop(force=False)  # someone interrupted it: stop the benchmark too
                return None
            raise _failure(name, code, log)
        sample = None
        if not warmup:
            sample = _read(launch, index, code, started, finished, wall, state, kept, log)
        emit(ExecutionFinished(index, warmup, total, finished, code, wall, sample))
        return sample
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _spawn(
    launch: Launch, root: str, pipeline: str, state: str, log: str, procs: _Processes,
    emit: Callable[[BenchEvent], None], which: tuple[int, bool, int],
) -> tuple[int | None, float, float, float]:
    """Run one ``flowctl run`` in the working copy ``root``; (exit code, or None when the
    benchmark stopped first; spawn time; exit time; wall seconds)."""
    index, warmup, total = which
    argv = [sys.executable, "-m", "flowctl", "run", pipeline, "--state-dir", state, "--no-progress", *launch.run_args]
    with open(log, "wb") as out:
        with procs.lock:
            if procs.stopping:
                return None, 0.0, 0.0, 0.0
            started, t0 = time.time(), time.monotonic()
            # Its own session: a terminal's Ctrl-C reaches the benchmark, which passes it on
            # once, rather than every runner at once and then again.
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=dict(launch.environ), cwd=root, start_new_session=True,
            )
            procs.running.add(proc)
        emit(ExecutionStarted(index, warmup, total, started))
        try:
            code = proc.wait()
        finally:
            wall = time.monotonic() - t0
            with procs.lock:
                procs.running.discard(proc)
    return code, started, started + wall, wall


def _read(
    launch: Launch, index: int, code: int, started: float, finished: float, wall: float,
    state: str, kept: str | None, log: str,
) -> RunSample:
    from flowctl.observe.stored_metrics import run_record

    try:
        record = run_record(state, "latest", launch.needs)
    except FlowctlError as exc:
        why = f"its run could not be read: {exc.message}"
        raise _failure(f"run-{index:03d}", int(ExitCode.INTERNAL), log, why=why) from None
    return RunSample(
        index=index,
        exit_code=code,
        started_at=started,
        finished_at=finished,
        wall_seconds=wall,
        metrics=compute_run_metrics(record),
        samples=run_samples(record),
        state_dir=state if kept is not None else None,
    )


def _failure(name: str, code: int, log: str, *, why: str | None = None) -> ExecutionFailed:
    tail = _tail(log)
    reason = why or f"`flowctl run` exited {code}"
    shown = "".join(f"\n  | {line}" for line in tail)
    return ExecutionFailed(
        f"benchmark execution {name}: {reason}{shown}",
        code,
        hint="each execution runs in a copy of the project (the files git sees, else the pipeline's "
        "folder; see docs/bench-command.md): run the pipeline once with `flowctl run` to see the problem",
    )


def _tail(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return [line.rstrip("\n") for line in fh.readlines()[-_TAIL_LINES:]]
    except OSError:
        return []


__all__ = [
    "BenchEvent",
    "ExecutionFailed",
    "ExecutionFinished",
    "ExecutionStarted",
    "Launch",
    "child_environment",
    "run_executions",
    "signals_interrupt",
]
