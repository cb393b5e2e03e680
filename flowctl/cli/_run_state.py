"""The state side of ``flowctl run``: resume arguments, the lock, the store, what to reuse.

Thin glue between ``cli/run.py`` and ``state/`` (the runner's ``run/`` never imports
``state/``): ``resume_target`` settles which run ``--resume``/``--run-id`` continue and with
which params and selection (a new run when none is recorded); ``open_run`` opens the session
(lock, SQLite store, decisions), ends what dead runs of the pipeline left running
(``--orphans``), and says before the run starts which steps are reused and why the others run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from flowctl.cli._run_build import RunRequest
    from flowctl.run.executors.sweep import Ending
    from flowctl.run.prepare import PreparedRun
    from flowctl.state.assess import ResumeTarget
    from flowctl.state.leftovers import Leftovers
    from flowctl.state.lock import Holder, PipelineLock
    from flowctl.state.session import RunSession


def resume_target(state_dir: str, request: RunRequest) -> ResumeTarget:
    """The run to continue (none without --resume, or when none is recorded), with the params
    and selection to run with and the selection to record. Raises UsageError."""
    from flowctl.spec.resolve import parse_param_args
    from flowctl.state.assess import ResumeTarget
    from flowctl.state.assess import resume_target as target

    overrides = parse_param_args(list(request.params))
    if not request.resuming:
        return ResumeTarget(None, overrides, request.only, request.from_, request.force, request.force_steps,
                            overrides, False)
    return target(state_dir, request.pipeline, request.run_id, overrides, request.only, request.from_,
                  force=request.force, force_steps=request.force_steps)


def wait_seconds(wait: str | None) -> float | None:
    """``--wait`` absent → 0 (fail at once); bare ``--wait`` → None (for ever); else a duration."""
    if wait is None:
        return 0.0
    if wait == "forever":
        return None
    from flowctl.spec.durations import duration_option

    return duration_option("--wait", wait)


def orphan_wait(policy: str) -> float | None:
    """``--orphans``: ``kill`` → 0 (end them at once), ``wait`` → None (wait for ever),
    ``wait=DURATION`` → at most that many seconds. Raises ``UsageError``."""
    from flowctl.errors import UsageError
    from flowctl.spec.durations import duration_option

    how, _, limit = policy.partition("=")
    if how == "kill" and not limit:
        return 0.0
    if how == "wait":
        if not limit:
            return None
        return duration_option(f"--orphans {policy}", limit, hint="e.g. --orphans wait=10m")
    raise UsageError(f"--orphans {policy!r}: expected kill, wait or wait=DURATION", hint="e.g. --orphans wait=10m")


@contextlib.contextmanager
def open_run(
    state_dir: str, prepared: PreparedRun, target: ResumeTarget, request: RunRequest, *, plain: bool,
) -> Iterator[RunSession | None]:
    """The session of this run, or None when a resume leaves nothing to do (said on stdout)."""
    from flowctl.run.events import RunId
    from flowctl.run.scheduler import new_run_id
    from flowctl.state.assess import check_resume_params
    from flowctl.state.session import open_session

    check_resume_params(target, prepared.pipeline, prepared.params)
    previous = target.record
    # `dlq replay` goes on in the run it replays (issue 15): same id, same record
    run_id = RunId(previous.run_id) if request.replay is not None and previous is not None else new_run_id()
    end_wait = orphan_wait(request.orphans)

    def end_leftovers(lock: PipelineLock) -> None:  # the lock is held: earlier runners are dead
        _end_leftovers(state_dir, prepared.pipeline.name, lock, end_wait, request.orphans, _Say(plain, run_id))

    def waiting(holder: Holder, path: Path) -> None:
        how_long = "as long as it runs" if request.wait == "forever" else f"at most {request.wait}"
        _Say(plain, run_id)([f"waiting for {holder.describe()} to finish: it holds {path} (--wait: {how_long})"])

    with open_session(
        state_dir, prepared, run_id, environ=os.environ, resume=previous, force=request.force,
        force_steps=request.force_steps, wait=wait_seconds(request.wait), after_lock=end_leftovers,
        on_wait=waiting,
        replay=request.replay,
    ) as session:
        fresh = target.requested and previous is None
        _say_plan(session, plain, f"no recorded run of {prepared.pipeline.name} to resume in {state_dir}: starting a new run"
                  if fresh else "")
        if previous is not None and session.nothing_to_do:
            yield None
        else:
            yield session


class _Say:
    """Lines on stdout before the run starts (timestamp and run id in front when plain)."""

    def __init__(self, plain: bool, run_id: str) -> None:
        self.plain = plain
        self.run_id = run_id

    def __call__(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        prefix = ""
        if self.plain:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + f" {self.run_id} "
        for line in lines:  # a reader gone (`flowctl run … | head -0`) is the boundary's (_common.reader_safe_output)
            sys.stdout.write(prefix + line + "\n")
        sys.stdout.flush()


def _end_leftovers(
    state_dir: str, pipeline: str, lock: PipelineLock, wait: float | None, policy: str, say: _Say
) -> None:
    """Find what dead runs of ``pipeline`` left running, say so, wait for it and/or end it.
    Raises ``LockedError`` when something cannot be ended (a second copy would run beside it)."""
    from flowctl.errors import LockedError
    from flowctl.run.executors.sweep import GRACE, end_leftovers
    from flowctl.state.leftovers import find_leftovers

    found = find_leftovers(state_dir, pipeline, lock)
    if not found.processes:
        return
    how = "ending them before anything starts" if wait == 0 else (
        f"waiting for them to end (--orphans {policy}), then ending what is left"
    )
    say([*_leftover_lines(found), f"  {how}"])
    ending = end_leftovers(found.processes, wait=wait, grace=GRACE)
    say([_ending_line(ending)])
    if ending.left:
        raise LockedError(
            f"{len(ending.left)} process(es) left by an earlier run of {pipeline} survive SIGKILL "
            f"(pids {', '.join(map(str, ending.left))}): not starting a second copy beside them",
            hint="they are stuck in the kernel (see `ps -o pid,stat,wchan,cmd -p PID`); run again once they are gone",
        )


def _leftover_lines(found: Leftovers) -> list[str]:
    lines = []
    for run_id, processes in found.by_run().items():
        steps: dict[str, list[int]] = {}
        for p in processes:
            steps.setdefault(p.step or "?", []).append(p.pid)
        shown = ", ".join(
            f"{step} (pid{'s' if len(pids) > 1 else ''} {', '.join(map(str, sorted(pids)))})"
            for step, pids in sorted(steps.items())
        )
        lines.append(f"run {run_id} left {len(processes)} process(es) running when its runner died: {shown}")
    return lines


def _ending_line(ending: Ending) -> str:
    done = ending.by_themselves + ending.terminated + ending.killed
    parts = [f"{ending.by_themselves} ended by themselves"] if ending.by_themselves else []
    if ending.terminated:
        parts.append(f"{ending.terminated} terminated")
    if ending.killed:
        parts.append(f"{ending.killed} killed")
    line = f"  {done} process(es) ended" + (f" ({', '.join(parts)})" if parts else "")
    return line + (f"; {len(ending.left)} still alive" if ending.left else "")


def _say_plan(session: RunSession, plain: bool, note: str = "") -> None:
    from flowctl.state.decide import Verdict

    decisions = list(session.assessment.decisions.values())
    kept = [d for d in decisions if d.verdict is not Verdict.RUN]
    running = [d for d in decisions if d.verdict is Verdict.RUN]
    lines: list[str] = [note] if note else []
    for run_id in session.interrupted:
        lines.append(f"run {run_id} was interrupted (its runner died); recorded as such")
    if session.replay is not None and session.resumed is not None:
        step, keys = session.replay
        lines.append(f"replaying {len(keys)} item(s) of step {step} in run {session.resumed.run_id}: "
                     f"running {len(running)} step(s), keeping {len(kept)}")
    elif session.resumed is not None:
        if not running:
            lines.append(
                f"nothing to do: every step of run {session.resumed.run_id} succeeded and nothing changed"
                f" ({len(kept)} step(s) reused)"
            )
        else:
            lines.append(f"resuming run {session.resumed.run_id}: reusing {len(kept)} step(s), running {len(running)}")
    elif kept and not running:
        lines.append(f"nothing to run: all {len(kept)} step(s) up to date")
    elif kept:
        lines.append(f"{len(kept)} step(s) up to date, running {len(running)}")
    # After an upgrade or a new key every step with outputs runs once: say why (issue 12).
    rekeyed = any(c.part in ("scheme", "key") for d in running for c in d.changes)
    if rekeyed and session.resumed is None and not kept:
        lines.append(f"running {len(running)} step(s): recorded fingerprints cannot be compared with this run's")
    if session.resumed is not None or kept or rekeyed:
        lines += [f"  run {d.step}: {_replay_words(d.reason, session.replay)}" for d in running]
    _Say(plain, session.run_id)(lines)


def _replay_words(reason: str, replay: tuple[str, tuple[str, ...]] | None) -> str:
    """A decision's words as ``dlq replay`` says them: it forces the replayed step internally,
    and the user typed no ``--force-step`` (trial 15)."""
    if replay is None:
        return reason
    if reason == "forced (--force-step)":
        return "its dead-lettered items are replayed"
    if reason.startswith(f"--force-step {replay[0]} "):
        return f"it needs {replay[0]}, whose items are replayed"
    return reason


def make_logs_dir(logs_dir: str) -> None:
    """Create the run's log folder. Raises ``StorageError`` (exit 74) when it cannot be made."""
    try:
        os.makedirs(logs_dir, exist_ok=True)
    except OSError as exc:
        from flowctl.errors import StorageError

        raise StorageError(
            f"cannot create the run's log folder {logs_dir}: {exc.strerror}",
            hint="check that the state folder is writable and its disk not full (or use another --state-dir)",
        ) from exc


def say(lines: Sequence[str], plain: bool, run_id: str) -> None:
    """Tell the user before the run starts; as timestamped lines with the run id when plain."""
    _Say(plain, run_id)(lines)


__all__ = ["make_logs_dir", "open_run", "orphan_wait", "resume_target", "say", "wait_seconds"]
