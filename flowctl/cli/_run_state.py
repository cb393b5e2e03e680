"""The state side of ``flowctl run``: resume arguments, the lock, the store, what to reuse.

Thin glue between ``cli/run.py`` and ``state/`` (the runner's ``run/`` never imports
``state/``): ``resume_target`` settles which run ``--resume``/``--run-id`` continue and with
which params and selection (a new run when none is recorded); ``open_run`` opens the session
(lock, SQLite store, decisions) and says before the run starts which steps are reused and why
the others run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowctl.run.prepare import PreparedRun
    from flowctl.state.assess import ResumeTarget
    from flowctl.state.session import RunSession


def resume_target(
    state_dir: str, pipeline_arg: str, overrides: dict[str, str], only: Sequence[str], from_: Sequence[str],
    *, resume: bool, run_id: str | None, force: bool = False, force_steps: Sequence[str] = (),
) -> ResumeTarget:
    """The run to continue (none without --resume, or when none is recorded), with the params
    and selection to run with and the selection to record."""
    from flowctl.state.assess import ResumeTarget, resume_target as target

    if not resume:
        return ResumeTarget(None, overrides, tuple(only), tuple(from_), force, tuple(force_steps), overrides, False)
    return target(state_dir, pipeline_arg, run_id, overrides, only, from_, force=force, force_steps=force_steps)


def wait_seconds(wait: str | None) -> float | None:
    """``--wait`` absent → 0 (fail at once); bare ``--wait`` → None (for ever); else a duration."""
    if wait is None:
        return 0.0
    if wait == "forever":
        return None
    from flowctl.errors import UsageError
    from flowctl.spec.durations import parse_duration

    try:
        return parse_duration(wait)
    except ValueError as exc:
        raise UsageError(f"--wait: {exc}", hint="put --wait after the pipeline file, or give it a duration") from exc


@contextlib.contextmanager
def open_run(
    state_dir: str, prepared: PreparedRun, target: ResumeTarget, *, force: bool,
    force_steps: Sequence[str], wait: str | None, plain: bool,
) -> Iterator[RunSession | None]:
    """The session of this run, or None when a resume leaves nothing to do (said on stdout)."""
    from flowctl.run.scheduler import new_run_id
    from flowctl.state.assess import check_resume_params
    from flowctl.state.session import open_session

    check_resume_params(target, prepared.pipeline, prepared.params)
    previous = target.record
    run_id = new_run_id()
    with open_session(
        state_dir, prepared, run_id, environ=os.environ, resume=previous, force=force,
        force_steps=force_steps, wait=wait_seconds(wait),
    ) as session:
        fresh = target.requested and previous is None
        _say_plan(session, plain, f"no recorded run of {prepared.pipeline.name} to resume in {state_dir}: starting a new run"
                  if fresh else "")
        if previous is not None and session.nothing_to_do:
            yield None
        else:
            yield session


def _say_plan(session: RunSession, plain: bool, note: str = "") -> None:
    from flowctl.state.decide import Verdict

    decisions = list(session.assessment.decisions.values())
    kept = [d for d in decisions if d.verdict is not Verdict.RUN]
    running = [d for d in decisions if d.verdict is Verdict.RUN]
    lines: list[str] = [note] if note else []
    for run_id in session.interrupted:
        lines.append(f"run {run_id} was interrupted (its runner died); recorded as such")
    if session.resumed is not None:
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
        lines += [f"  run {d.step}: {d.reason}" for d in running]
    if not lines:
        return
    prefix = ""
    if plain:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + f" {session.run_id} "
    for line in lines:
        sys.stdout.write(prefix + line + "\n")
    sys.stdout.flush()


def run_options(session: RunSession | None) -> Mapping[str, Any]:
    """What the session adds to the scheduler's ``RunOptions``."""
    if session is None:
        return {}
    session.start_recording()
    return {
        "reuse": session.reuse(),
        "fingerprints": session.fingerprints(),
        "resumed_from": session.resumed.run_id if session.resumed is not None else None,
        "provenance": dict(session.provenance()),
    }


__all__ = ["open_run", "resume_target", "run_options", "wait_seconds"]
