"""What an earlier run of a pipeline left running when its runner died, and whether it is dead.

After ``kill -9`` of the runner (or an OOM kill, a crashed machine session) its steps keep
running: they are not its children any more, and nothing ends them. The next ``run`` or
``--resume`` of the pipeline would start a second copy of each beside the first (issue 12).
This module decides which processes may be ended; ``procs.tagged_processes`` finds them (their
environment names their run in ``FLOWCTL_RUN_ID``), ``sweep.end_leftovers`` ends them, and the
CLI wires the two and says what it does.

The decision comes from state, and the lock is the proof: it is only asked while the caller
holds the pipeline's lock, so no runner of the pipeline is alive in this state folder, and only
processes of runs of *this* pipeline recorded in *this* folder, started by the runner recorded
for that run (its pid is part of each process's ``FLOWCTL_PROC_TOKEN``), are ever candidates: a
healthy run of another pipeline, or one of another state folder that happens to share a run id,
is never touched. One more check guards against a lock that proves nothing because its file
was deleted or replaced under a live run: a process whose parent is still the runner recorded
for its run (same host, same pid; a process's parent is re-set the moment its parent dies, so a
reused pid cannot fake this) means that runner is alive, and the caller must not start
(``LockedError``, exit 75).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from flowctl.errors import LockedError
from flowctl.run import procs
from flowctl.state import queries
from flowctl.state.lock import PipelineLock
from flowctl.state.views import opened


@dataclass(frozen=True, slots=True)
class Leftovers:
    """Processes still alive from earlier, dead runs of the pipeline."""

    processes: tuple[procs.Tagged, ...] = ()

    @property
    def run_ids(self) -> tuple[str, ...]:
        return tuple(sorted({p.run_id for p in self.processes}))

    def by_run(self) -> Mapping[str, tuple[procs.Tagged, ...]]:
        return {rid: tuple(p for p in self.processes if p.run_id == rid) for rid in self.run_ids}


def find_leftovers(
    state_dir: str | os.PathLike[str],
    pipeline: str,
    lock: PipelineLock,
    *,
    scan: Callable[[], Sequence[procs.Tagged]] = procs.tagged_processes,
) -> Leftovers:
    """The processes earlier runs of ``pipeline`` left behind; ``lock`` (held) is the proof
    that their runners are dead. Machine-wide scanning happens only when the state says an
    earlier run may have left some (see ``queries.may_have_left_processes``).
    Raises ``LockedError`` when a recorded runner is alive after all (its lock file was deleted
    or replaced), ``StateError`` for a bad database."""
    if not lock.held:
        raise ValueError("find_leftovers needs the pipeline's lock held")
    with opened(state_dir) as conn:
        if not queries.may_have_left_processes(conn, pipeline):
            return Leftovers()
        found = scan()
        owners = queries.runners(conn, pipeline, {p.run_id for p in found}) if found else {}
    # Same run id *and* started by that run's recorded runner: a run of another state folder
    # that happens to share the id (second + 16 random bits) is never taken for ours.
    theirs = tuple(p for p in found if p.run_id in owners and p.runner_pid == owners[p.run_id][1])
    host = os.uname().nodename
    for run_id, (runner_host, runner_pid) in sorted(owners.items()):
        if runner_host == host and runner_pid and any(p.ppid == runner_pid for p in theirs if p.run_id == run_id):
            raise LockedError(
                f"pipeline {pipeline} is already running: run {run_id} (pid {runner_pid}) still runs its "
                f"steps although its lock file {lock.path} was deleted or replaced",
                hint="let it end (it stops at its next checkpoint with exit 74), then run again; never "
                "delete files of the state folder while a run is going on",
            )
    return Leftovers(theirs)


__all__ = ["Leftovers", "find_leftovers"]
