"""Where else under the project runs are recorded, for commands that found none where they looked.

"Never print 'no runs recorded' when runs exist elsewhere under the project: say where" (issue
13). ``location.state_dirs_below`` finds the other state folders (bounded); this module opens
each one through ``views`` and words the hint, with the command to type. Only called when a
command found nothing, so the search costs nothing in the ordinary case. A folder that cannot
be read is passed over: this only feeds hints.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flowctl.errors import FlowctlError, StateError, StorageError, UsageError
from flowctl.state import queries
from flowctl.state.location import STATE_DIR_ENV, doctor_command, project_root, shown_path, state_dirs_below
from flowctl.state.run_records import RunRecord
from flowctl.state.views import count_runs, opened, recent_runs, set_aside_databases, unrecorded_runs


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """A state folder under the project, other than the one a command used, that holds runs."""

    state_dir: Path
    runs: int  # of the pipeline asked about, when one was
    newest: RunRecord


def runs_elsewhere(state_dir: str | os.PathLike[str], pipeline: str | None = None) -> tuple[Elsewhere, ...]:
    """The other state folders below the folder holding ``state_dir`` (when it is a discovered
    ``.flowctl``; see ``location.state_dirs_below`` for the bounds) that record runs (of
    ``pipeline``, file or name, when given), the one with the newest run first. A folder that
    cannot be read is passed over: this only feeds hints."""
    root = project_root(Path(os.path.abspath(state_dir)))
    if root is None:
        return ()
    found = []
    for other in state_dirs_below(root, exclude=Path(state_dir)):
        try:
            count = count_runs(other, pipeline)
            newest = recent_runs(other, pipeline, limit=1) if count else ()
        except StateError:
            continue
        if newest:
            found.append(Elsewhere(state_dir=other, runs=count, newest=newest[0]))
    return tuple(sorted(found, key=lambda e: (-e.newest.started_at, str(e.state_dir))))  # newest first


def elsewhere_lines(found: Sequence[Elsewhere], command: Sequence[str]) -> list[str]:
    """What to say about ``found``: where the runs are and the command (``flowctl COMMAND``)
    that reads them."""
    if not found:
        return []
    lines = ["runs are recorded elsewhere under the project:"]
    for place in found[:_SHOWN]:
        lines.append(
            f"  {shown_path(place.state_dir)}: {place.runs} run(s), newest {place.newest.run_id} "
            f"({place.newest.pipeline}, {place.newest.status})"
        )
    if len(found) > _SHOWN:
        lines.append(f"  … and {len(found) - _SHOWN} more")
    lines.append(f"read them with: flowctl {_with_state_dir(command, found[0].state_dir)}")
    return lines


_SHOWN = 5  # state folders listed by elsewhere_lines
_HINT_INDENT = "\n" + " " * len("  hint: ")  # a hint's next lines, under its first


def _with_state_dir(command: Sequence[str], state_dir: Path) -> str:
    return shlex.join([*command, "--state-dir", shown_path(state_dir)])


def where_hint(state_dir: str | os.PathLike[str], pipeline: str | None, command: Sequence[str]) -> str | None:
    """A hint saying where under the project runs (of ``pipeline``) are recorded, with the
    ``command`` that reads them there; None when there are none elsewhere."""
    found = runs_elsewhere(state_dir, pipeline)
    return _HINT_INDENT.join(elsewhere_lines(found, command)) if found else None


def lost_runs_error(path: Path) -> StorageError | None:
    """When ``path`` records no runs but its ``runs/`` holds run folders: the database lost
    them (deleted or replaced). An error (74) saying so, with the ``doctor`` command; else None."""
    lost = unrecorded_runs(path)
    if not lost or set_aside_databases(path):  # doctor set their records aside on request
        return None
    return StorageError(
        f"the state database in {shown_path(path)} records no runs, but {shown_path(path / 'runs')} holds "
        f"{len(lost)} run folder(s) (newest {lost[-1]}): the database lost their records (deleted or replaced)",
        hint=f"run `{doctor_command(path)}`; the step logs are still in {shown_path(path / 'runs')}",
    )


def no_runs_error(path: Path, pipeline: str | None, command: Sequence[str]) -> FlowctlError:
    """"No runs (of ``pipeline``) in ``path``", with where they are recorded instead and the
    ``command`` that reads them there; a ``lost_runs_error`` when the database lost them."""
    lost = lost_runs_error(path) if not pipeline else None
    if lost is not None:
        return lost
    of = f" of {pipeline}" if pipeline else ""
    return UsageError(
        f"no runs{of} recorded in {shown_path(path)}",
        hint=meant_pipeline(path, pipeline) or where_hint(path, pipeline, command)
        or f"run a pipeline first, or point --state-dir / ${STATE_DIR_ENV} at the state folder of its runs",
    )


def meant_pipeline(path: Path, pipeline: str | None) -> str | None:
    """"did you mean 'demo'?" for a pipeline name with no runs in ``path`` that is close to the
    name of one with runs (a typo such as ``--pipeline dmeo``); None otherwise."""
    if not pipeline or os.path.isfile(pipeline):
        return None
    from flowctl.spec.schema import suggest

    try:
        with opened(path) as conn:
            names = queries.pipeline_names(conn)
    except StateError:
        return None
    meant = suggest(pipeline, names)
    return f"did you mean {meant!r}? (pipelines with runs here: {', '.join(names)})" if meant else None


def unknown_run_error(path: Path, error: UsageError, run_id: str, command: Sequence[str]) -> UsageError:
    """``error`` (an unknown run id) again, naming the state folder under the project that
    records the run and the ``command`` that reads it there, when there is one."""
    root = project_root(Path(os.path.abspath(path)))
    for other in state_dirs_below(root, exclude=path) if root is not None else ():
        try:
            with opened(other) as conn:
                run = queries.find_run(conn, run_id)
        except (StateError, UsageError):
            continue
        words = [run.run_id if w == run_id else w for w in command]
        return UsageError(
            f"{error.message} in {shown_path(path)}",
            hint=f"run {run.run_id} is recorded in {shown_path(other)}: flowctl {_with_state_dir(words, other)}",
        )
    return error


__all__ = ["Elsewhere", "elsewhere_lines", "lost_runs_error", "meant_pipeline", "no_runs_error", "runs_elsewhere", "unknown_run_error", "where_hint"]
