"""The state side of ``flowctl run``: resume arguments, the lock, the store, what to reuse.

Thin glue between ``cli/run.py`` and ``state/`` (the runner's ``run/`` never imports
``state/``): ``resume_target`` settles which run ``--resume``/``--run-id`` continue and with
which params and selection; ``open_run`` opens the session (lock, SQLite store, decisions) and
says before the run starts which steps are reused and why the others run.
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
    from flowctl.state.records import RunRecord
    from flowctl.state.session import RunSession


def resume_target(
    state_dir: str, pipeline_arg: str, overrides: dict[str, str], only: Sequence[str], from_: Sequence[str],
    *, resume: bool, run_id: str | None,
) -> tuple[RunRecord | None, dict[str, str], tuple[str, ...], tuple[str, ...]]:
    """(the run to continue or None, the params, --only, --from to run with)."""
    if not resume:
        return None, overrides, tuple(only), tuple(from_)
    from flowctl.state.assess import find_resumable, resume_arguments

    record = find_resumable(state_dir, pipeline_arg, run_id)
    params, rec_only, rec_from = resume_arguments(record, overrides, only, from_)
    return record, params, rec_only, rec_from


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
    state_dir: str, prepared: PreparedRun, previous: RunRecord | None, *, force: bool,
    force_steps: Sequence[str], wait: str | None, plain: bool,
) -> Iterator[RunSession | None]:
    """The session of this run, or None when a resume leaves nothing to do (said on stdout)."""
    from flowctl.run.scheduler import new_run_id
    from flowctl.state.session import open_session

    run_id = new_run_id()
    with open_session(
        state_dir, prepared, run_id, environ=os.environ, resume=previous, force=force,
        force_steps=force_steps, wait=wait_seconds(wait),
    ) as session:
        _say_plan(session, plain)
        if previous is not None and session.nothing_to_do:
            yield None
        else:
            yield session


def _say_plan(session: RunSession, plain: bool) -> None:
    from flowctl.state.decide import Verdict

    decisions = list(session.assessment.decisions.values())
    kept = [d for d in decisions if d.verdict is not Verdict.RUN]
    running = [d for d in decisions if d.verdict is Verdict.RUN]
    lines: list[str] = []
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
    if session.resumed is not None or kept:
        lines += [f"  run {d.step}: {d.reason}" for d in running]
    say(lines, plain, session.run_id)


def say(lines: Sequence[str], plain: bool, run_id: str) -> None:
    """Tell the user before the run starts; as timestamped lines with the run id when plain."""
    if not lines:
        return
    prefix = ""
    if plain:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + f" {run_id} "
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


__all__ = ["open_run", "resume_target", "run_options", "say", "wait_seconds"]
