"""The commit a work tree has checked out and whether tracked files differ from it.

One short ``git status`` process (porcelain v2 gives HEAD's commit and the changed entries in
one answer) rather than gitpython: this is asked by every stateful ``flowctl run`` for its
provenance, and the run path must not pay gitpython's import (about 90 ms). It is also
``release``'s clean-tree check, so "dirty" means one thing everywhere. Never takes git's index
lock (``GIT_OPTIONAL_LOCKS=0``): a run must not collide with the user's own git commands.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

#: Seconds a status may take before the answer counts as unknown.
TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class WorkTreeStatus:
    commit: str | None  # HEAD's full sha; None in a repository without commits
    dirty: bool  # a tracked file is changed, staged or deleted (untracked files do not count)


def work_tree_status(folder: str | os.PathLike[str]) -> WorkTreeStatus | None:
    """The status of the work tree containing ``folder``; None outside a repository, without
    a ``git`` executable, or when git fails or takes longer than ``TIMEOUT``."""
    try:
        proc = subprocess.run(
            ["git", "-C", os.fspath(folder), "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    commit: str | None = None
    dirty = False
    for line in proc.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.removeprefix("# branch.oid ").strip()
            commit = None if oid == "(initial)" else oid
        elif line and not line.startswith("#"):
            dirty = True
    return WorkTreeStatus(commit, dirty)


__all__ = ["TIMEOUT", "WorkTreeStatus", "work_tree_status"]
