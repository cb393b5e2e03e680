"""What the history commands ask for: runs, one run, a step's log, pruning; lock-aware.

Each function opens the state folder's database, answers one question and closes it. A run
recorded as ``running`` whose pipeline lock nobody holds died without saying so (``kill -9``,
reboot): these views show it as ``interrupted`` without writing (the next ``flowctl run`` of the
pipeline records it). Which folder is the state folder is ``location.state_dir_for``'s decision
(re-exported here); run ids, ``latest`` included, are resolved by ``queries.find_run``. Raises
``StateError`` for a bad database, ``UsageError`` for unknown ids (saying where else under the
project runs are recorded: ``elsewhere.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flowctl.errors import UsageError
from flowctl.run.events import RunStatus, StepStatus
from flowctl.state import db, lock, queries
from flowctl.state.location import STATE_DIR_ENV, state_dir_for
from flowctl.state.run_records import AttemptRecord, RunDetail, RunRecord, StepRecord

if TYPE_CHECKING:
    from flowctl.run.chaos import Injected


def run_log_dir(state_dir: str | os.PathLike[str], run_id: str) -> Path:
    """``<state dir>/runs/<run id>``: where a run's step logs live."""
    return Path(state_dir) / "runs" / run_id


@contextlib.contextmanager
def opened(state_dir: str | os.PathLike[str], *, write: bool = False) -> Iterator[sqlite3.Connection]:
    """The folder's database, read-only unless ``write`` (so history works on a folder this user
    cannot write; issue 12)."""
    conn = db.connect(state_dir, create=False) if write else db.connect_readonly(state_dir)
    try:
        with db.translated(db.db_path(state_dir)):
            yield conn
    finally:
        conn.close()


def _alive(state_dir: Path, run: RunRecord) -> RunRecord:
    if run.status != RunStatus.RUNNING.value or lock.is_locked(state_dir, run.pipeline):
        return run
    return dataclasses.replace(run, status=RunStatus.INTERRUPTED.value)


def pipeline_key(path: str | os.PathLike[str]) -> str:
    """How a pipeline file is recorded (``runs.pipeline_path``): its real absolute path."""
    text = os.fspath(path)
    return os.path.realpath(text) if os.path.exists(text) else text


def _pipeline_key(pipeline: str | None) -> str | None:
    """A pipeline is named by its name, or by its file (recorded by its real path)."""
    if pipeline and os.path.isfile(pipeline):
        return pipeline_key(pipeline)
    return pipeline


def recent_runs(state_dir: str | os.PathLike[str], pipeline: str | None = None, *, limit: int | None = 20) -> tuple[RunRecord, ...]:
    """The most recent runs, newest first (of ``pipeline``, by name or file path, when given)."""
    path = Path(state_dir)
    if not db.db_path(path).exists():
        return ()
    with opened(path) as conn:
        runs = queries.list_runs(conn, _pipeline_key(pipeline), limit=limit)
    return tuple(_alive(path, r) for r in runs)


def typical_durations(state_dir: str | os.PathLike[str], pipeline: str, *, runs: int = 5) -> dict[str, float]:
    """Each step's median duration over its successes in the ``runs`` most recent runs of
    ``pipeline`` (by name); empty when nothing is recorded. For the live view's ETA."""
    import statistics

    path = Path(state_dir)
    if not db.db_path(path).exists():
        return {}
    with opened(path) as conn:
        found = queries.step_durations(conn, pipeline, runs=runs)
    return {step: statistics.median(values) for step, values in found.items()}


def count_runs(state_dir: str | os.PathLike[str], pipeline: str | None = None) -> int:
    """How many runs the state folder records (of ``pipeline``, by name or file path, when given)."""
    path = Path(state_dir)
    if not db.db_path(path).exists():
        return 0
    with opened(path) as conn:
        return queries.count_runs(conn, _pipeline_key(pipeline))


def unrecorded_runs(state_dir: str | os.PathLike[str]) -> tuple[str, ...]:
    """The run folders in ``<state_dir>/runs`` that the database does not record (all of them
    when it is gone) and hold step logs, oldest first: their records were lost (the database deleted or replaced).
    A folder of a run that holds a lock now is left out (it is being recorded)."""
    path = Path(state_dir)
    try:
        # An empty folder is a run that stopped before its first step (nothing was lost).
        folders = sorted(p.name for p in (path / "runs").iterdir() if p.is_dir() and any(p.iterdir()))
    except OSError:
        return ()
    if not folders:
        return ()
    busy = {lock.read_holder(f).run_id for f in path.glob("*.lock") if lock.is_locked(path, f.stem)}
    known: set[str] = set()
    if db.db_path(path).exists():
        with opened(path) as conn:
            known = queries.known_run_ids(conn, folders)
    return tuple(f for f in folders if f not in known and f not in busy)


def set_aside_databases(state_dir: str | os.PathLike[str]) -> tuple[Path, ...]:
    """Databases ``flowctl doctor`` set aside in ``state_dir`` (``state.db.bad-*``, ``.aside-*``)."""
    return tuple(sorted(Path(state_dir).glob(db.db_path(state_dir).name + ".*-*")))


def run_details(
    state_dir: str | os.PathLike[str],
    run_id: str,
    pipeline: str | None = None,
    *,
    command: Sequence[str] = ("show",),
) -> RunDetail:
    """One run with its steps and attempts. ``run_id`` is what ``queries.find_run`` accepts (an
    id, a unique prefix, ``latest``, ``latest~N``); ``pipeline`` (file or name) narrows ``latest``.

    Raises UsageError when the state folder has no runs or not this one, saying where under the
    project runs are recorded instead (``elsewhere.py``); ``command`` is the command those
    hints suggest (default: ``show RUN_ID``).
    """
    from flowctl.state import elsewhere  # it reads other state folders through this module

    path = Path(state_dir)
    key = _pipeline_key(pipeline)
    words = tuple(command) if len(command) > 1 else (*command, run_id)
    if not db.db_path(path).exists():
        raise elsewhere.no_runs_error(path, pipeline, words)
    with opened(path) as conn:
        try:
            detail = queries.run_detail(conn, run_id, key)
        except UsageError as exc:
            latest = queries.is_latest(run_id)
            if queries.count_runs(conn, key if latest else None) == 0:
                raise elsewhere.no_runs_error(path, pipeline if latest else None, words) from None
            if latest or queries.has_run(conn, run_id):
                raise  # ambiguous, or a latest~N beyond the oldest: nothing to look for elsewhere
            raise elsewhere.unknown_run_error(path, exc, run_id, words) from None
    run = _alive(path, detail.run)
    if run is detail.run:
        return detail
    steps = tuple(_interrupted(s) for s in detail.steps)
    counts: dict[str, int] = {}  # as the table shows them, not as the dead runner last saved them
    for s in steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    return RunDetail(run=dataclasses.replace(run, counts=counts), steps=steps, items=detail.items)


def _interrupted(step: StepRecord) -> StepRecord:
    if step.status != StepStatus.RUNNING.value:
        return step
    attempts = tuple(
        dataclasses.replace(a, outcome="interrupted") if a.finished_at is None else a for a in step.attempt_records
    )
    return dataclasses.replace(step, status=StepStatus.INTERRUPTED.value, attempt_records=attempts)


@dataclass(frozen=True, slots=True)
class StepLog:
    """Where an attempt's log is, and whether it exists."""

    run_id: str  # the full id
    step: str
    attempt: int
    path: Path  # where the attempt's output goes
    exists: bool  # False: the attempt printed nothing (an attempt's log is made with its first byte)
    item: str = ""  # a foreach item's key when the log is one item's


def step_log(
    state_dir: str | os.PathLike[str], run_id: str, step: str, attempt: int | None = None, pipeline: str | None = None
) -> StepLog:
    """The log of ``step``'s attempt ``attempt`` (default: its last) in run ``run_id`` (as
    ``run_details`` takes it)."""
    detail = run_details(state_dir, run_id, pipeline, command=("logs", run_id, step))
    return attempt_step_log(state_dir, detail, step, attempt)


def attempt_step_log(state_dir: str | os.PathLike[str], detail: RunDetail, step: str, attempt: int | None = None) -> StepLog:
    """``step_log`` for a run already read."""
    record = detail.step(step)
    if record is None:
        from flowctl.spec.schema import suggest

        close = suggest(step, [s.step for s in detail.steps])
        raise UsageError(
            f"run {detail.run.run_id} has no step {step!r}",
            hint=f"did you mean {close!r}?" if close else f"`flowctl show {detail.run.run_id}` lists its steps",
        )
    attempts = record.attempt_records
    if not attempts:
        raise UsageError(f"step {step} never started in run {detail.run.run_id} ({record.status}), so it has no log")
    chosen = attempts[-1] if attempt is None else next((a for a in attempts if a.attempt == attempt), None)
    if chosen is None:
        numbers = ", ".join(str(a.attempt) for a in attempts)
        raise UsageError(f"step {step} of run {detail.run.run_id} has no attempt {attempt} (it has {numbers})")
    path = attempt_log(state_dir, chosen)
    return StepLog(run_id=detail.run.run_id, step=step, attempt=chosen.attempt, path=path, exists=path.is_file())


def failure_log(state_dir: str | os.PathLike[str], detail: RunDetail) -> StepLog | None:
    """The log of the last attempt of the run's root failure (the first step that failed for
    good; for a run recorded without one, its first failed step), None when no step failed."""
    failed = (StepStatus.FAILED.value, StepStatus.FAILED_ALLOWED.value)
    root = detail.run.root_failure or next((s.step for s in detail.steps if s.status in failed), None)
    record = detail.step(root) if root else None
    if record is None or not record.attempt_records:
        return None
    return attempt_step_log(state_dir, detail, record.step)


def attempt_log(state_dir: str | os.PathLike[str], attempt: AttemptRecord) -> Path:
    """Where ``attempt``'s log is (or would be: an attempt that printed nothing has none)."""
    return Path(attempt_log_path(state_dir, attempt))


def attempt_log_path(state_dir: str | os.PathLike[str], attempt: AttemptRecord) -> str:
    """``attempt_log`` as a string: ``show`` asks it once per step, and building a ``Path`` each
    time cost more than the ``stat`` (issue 12)."""
    path = attempt.log_path or os.path.join(run_log_dir(state_dir, attempt.run_id), attempt.step, f"{attempt.attempt}.log")
    return path if os.path.isabs(path) else os.path.join(state_dir, path)


@dataclass(frozen=True, slots=True)
class GcResult:
    """What ``flowctl gc`` pruned (or would prune, with ``dry_run``)."""

    runs: tuple[RunRecord, ...]  # what was (or, with dry_run, would be) pruned
    log_dirs: tuple[str, ...]
    bytes_freed: int
    dry_run: bool


def collect_garbage(
    state_dir: str | os.PathLike[str],
    *,
    keep: int | None = None,
    older_than: float | None = None,
    pipeline: str | None = None,
    dry_run: bool = False,
    now: float | None = None,
) -> GcResult:
    """Prune finished runs beyond the newest ``keep`` per pipeline and/or older than
    ``older_than`` seconds, with their log folders. Runs still running are kept."""
    if keep is None and older_than is None:
        raise UsageError("say what to prune: --keep N and/or --older-than DURATION", hint="e.g. flowctl gc --keep 20")
    if keep is not None and keep < 0:
        raise UsageError("--keep must be 0 or more")
    path = Path(state_dir)
    with opened(path, write=True) as conn:
        candidates = queries.runs_to_prune(
            conn, keep=keep, older_than=older_than, pipeline=_pipeline_key(pipeline), now=time.time() if now is None else now
        )
        doomed = tuple(r for r in candidates if _alive(path, r).status != RunStatus.RUNNING.value)
        if not dry_run and doomed:
            with db.transaction(conn):
                queries.delete_runs(conn, [r.run_id for r in doomed])
    dirs, freed = [], 0
    for run in doomed:
        folder = run_log_dir(path, run.run_id)
        if folder.is_dir():
            freed += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            dirs.append(str(folder))
            if not dry_run:
                shutil.rmtree(folder, ignore_errors=True)
    return GcResult(runs=doomed, log_dirs=tuple(dirs), bytes_freed=freed, dry_run=dry_run)


def chaos_spent(state_dir: str | os.PathLike[str], run_id: str) -> tuple[Injected, ...]:
    """The faults chaos injected in run ``run_id`` and the runs it resumes (issue 17): what a
    resume of it has already spent."""
    from flowctl.run.chaos import Injected
    from flowctl.state.items import item_faults

    with opened(state_dir) as conn:
        chain = queries.resume_chain(conn, run_id)
        rows = queries.injected_faults(conn, chain)
        items = item_faults(conn, tuple(chain))
    return (*(Injected(step, "", attempt, fault) for _, step, attempt, fault in rows),
            *(Injected(step, key, attempt, fault) for _, step, key, attempt, fault in items))


__all__ = [
    "STATE_DIR_ENV",
    "GcResult",
    "StepLog",
    "attempt_log",
    "attempt_log_path",
    "attempt_step_log",
    "chaos_spent",
    "collect_garbage",
    "count_runs",
    "failure_log",
    "pipeline_key",
    "recent_runs",
    "run_details",
    "run_log_dir",
    "state_dir_for",
    "step_log",
    "typical_durations",
]
